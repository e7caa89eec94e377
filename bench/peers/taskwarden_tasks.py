"""Taskwarden actions for the peer benchmark: the same long job and trivial job as every peer.

Loaded by the node with ``--app taskwarden_tasks``. The job's cooperative check is the task's
own cancel flag (a memory read, or a pipe poll in a worker process): no round trip per iteration.
"""

from __future__ import annotations

from typing import Any

import common

from taskwarden import action
from taskwarden.runtime.handle import AsyncTaskHandle


@action("peer:long-async")
async def long_async(task: AsyncTaskHandle, key: str, duration: float) -> str:
    """The long job on the event loop: cancellation arrives as CancelledError at its next await."""
    return await common.run_loop_async(key, duration)


def long_blocking(task: Any, key: str, duration: float) -> str:
    """The long job in a worker thread or process: it checks the task's cancel flag each unit."""
    outcome = common.run_loop_sync(key, duration, check=lambda: task.cancelled)
    if outcome == "cooperative-return":
        task.check_cancelled()
    return outcome


action("peer:long-thread", executor="thread")(long_blocking)
action("peer:long-process", executor="process")(long_blocking)


@action("peer:trivial-async")
async def trivial_async(task: AsyncTaskHandle, key: str) -> None:
    """The trivial job on the event loop."""
    common.trivial_job(key)


def trivial_blocking(task: Any, key: str) -> None:
    """The trivial job in a worker thread or process."""
    common.trivial_job(key)


action("peer:trivial-thread", executor="thread")(trivial_blocking)
action("peer:trivial-process", executor="process")(trivial_blocking)
