"""A user application the REST tests load into a node with ``--app tw_user_app``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from taskwarden import Task, TaskCancelledError, action


@action("user:greet")
async def greet(task: Task, *, name: str, times: int = 1) -> dict[str, Any]:
    """Greet someone (a user action loaded with --app)."""
    return {"greeting": " ".join([f"hello {name}"] * times), "task": task.id}


@action("user:whoami")
async def whoami(task: Task) -> dict[str, Any]:
    """Who started this task, as the node recorded it in the task's headers."""
    return {"headers": task.headers}


@action("user:record_cancel")
async def record_cancel(task: Task, *, path: str) -> dict[str, Any]:
    """Sleep until cancelled, then write the cancellation reason to ``path``."""
    try:
        await task.sleep(3600)
    except (TaskCancelledError, asyncio.CancelledError):
        target = Path(path)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(task.cancel_reason or "")
        tmp.replace(target)
        raise
    return {}
