"""Outcome: how a run ended, and how an action's return value or exception becomes one."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from taskwarden.errors import (
    ActionFailedError,
    TaskCancelledError,
    TaskwardenError,
    es_type_of,
)
from taskwarden.tasks import NODE_SHUTTING_DOWN, CancellableTask, Task

__all__ = ["Outcome", "failed", "returned", "shut_down"]

log = logging.getLogger("taskwarden.runtime.runner")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a task ended: a JSON-able response or an error."""

    response: Any = None
    error: TaskwardenError | None = None


def returned(action: str, response: Any) -> Outcome:
    """The outcome of an action that returned ``response``: refused if it is not JSON."""
    try:
        orjson.dumps(response, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        return Outcome(error=ActionFailedError(
            f"action [{action}] returned a response that is not JSON: {exc}",
            es_type="illegal_state_exception",
        ))
    return Outcome(response=response)


def failed(task: Task, exc: BaseException) -> Outcome:
    """The outcome of an action that raised ``exc`` (a cancel included)."""
    if isinstance(exc, asyncio.CancelledError):
        if isinstance(task, CancellableTask) and task.is_cancelled:
            return Outcome(error=task.cancelled_error())
        return shut_down()
    if isinstance(exc, TaskwardenError):
        return Outcome(error=exc)
    log.debug("action [%s] of task [%s] failed", task.action, task.id, exc_info=exc)
    return Outcome(error=ActionFailedError(str(exc) or type(exc).__name__, es_type=es_type_of(exc)))


def shut_down() -> Outcome:
    """The outcome of a run stopped by the node, not by a cancel of its task."""
    return Outcome(error=TaskCancelledError(f"task cancelled [{NODE_SHUTTING_DOWN}]"))
