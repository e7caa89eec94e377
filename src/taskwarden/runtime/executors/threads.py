"""A bounded thread pool for blocking actions; a full pool rejects instead of queueing forever."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from taskwarden.errors import RejectedExecutionError
from taskwarden.runtime.resources import TaskUsage
from taskwarden.tasks import Task

__all__ = ["ThreadExecutor"]

T = TypeVar("T")


class ThreadExecutor:
    """Runs blocking callables on worker threads; at most ``max_workers + queue_size`` at once."""

    def __init__(self, *, max_workers: int = 64, queue_size: int = 1000) -> None:
        self.max_workers = max_workers
        self.capacity = max_workers + queue_size
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="taskwarden-worker"
        )
        self._in_flight = 0
        self._by_thread: dict[int, Task] = {}

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def tasks_by_thread(self) -> dict[int, Task]:
        """Which task each busy worker thread (by ``threading.get_ident()``) runs right now."""
        return dict(self._by_thread)

    def submit(
        self, fn: Callable[..., T], *args: Any, task: Task | None = None
    ) -> asyncio.Future[T]:
        """Schedule ``fn(*args)`` for ``task``; raises RejectedExecutionError (429) when full."""
        if self._in_flight >= self.capacity:
            raise RejectedExecutionError(
                f"rejected execution of thread task: {self._in_flight} already running or queued "
                f"(pool size {self.max_workers}, capacity {self.capacity})"
            )
        loop = asyncio.get_running_loop()
        self._in_flight += 1
        future = loop.run_in_executor(self._pool, self._run_for, task, fn, args)
        future.add_done_callback(self._done)
        return future

    def _run_for(self, task: Task | None, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if task is None:
            return fn(*args)
        ident = threading.get_ident()
        self._by_thread[ident] = task
        usage = task.resource_stats if isinstance(task.resource_stats, TaskUsage) else None
        if usage is not None:
            usage.thread_started()
        try:
            return fn(*args)
        finally:
            if usage is not None:
                usage.thread_ended()
            self._by_thread.pop(ident, None)

    def _done(self, _: asyncio.Future[Any]) -> None:
        self._in_flight -= 1

    def shutdown(self) -> None:
        """Stop accepting work; running threads finish on their own (they see their task's flag)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
