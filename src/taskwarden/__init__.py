"""taskwarden: long operations as tasks you can list and cancel through the Elasticsearch Task API.

The public names load lazily, so ``import taskwarden.tasks`` stays free of web and database code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from taskwarden._version import __version__

if TYPE_CHECKING:
    from taskwarden.client import AsyncClient, Client
    from taskwarden.errors import TaskCancelledError, TaskwardenError
    from taskwarden.node import Node, NodeSettings
    from taskwarden.runtime.handle import AsyncTaskHandle as Task
    from taskwarden.runtime.handle import ThreadTaskHandle
    from taskwarden.runtime.registry import action

__all__ = [
    "AsyncClient",
    "Client",
    "Node",
    "NodeSettings",
    "Task",
    "TaskCancelledError",
    "TaskwardenError",
    "ThreadTaskHandle",
    "__version__",
    "action",
]

_LAZY = {
    "AsyncClient": ("taskwarden.client", "AsyncClient"),
    "Client": ("taskwarden.client", "Client"),
    "Node": ("taskwarden.node", "Node"),
    "NodeSettings": ("taskwarden.node", "NodeSettings"),
    "Task": ("taskwarden.runtime.handle", "AsyncTaskHandle"),
    "TaskCancelledError": ("taskwarden.errors", "TaskCancelledError"),
    "TaskwardenError": ("taskwarden.errors", "TaskwardenError"),
    "ThreadTaskHandle": ("taskwarden.runtime.handle", "ThreadTaskHandle"),
    "action": ("taskwarden.runtime.registry", "action"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'taskwarden' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value
