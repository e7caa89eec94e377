"""A bounded thread pool for blocking actions; a full pool rejects instead of queueing forever."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

from taskwarden.errors import RejectedExecutionError

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

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Schedule ``fn(*args)``; raises RejectedExecutionError (429) when the pool is full."""
        if self._in_flight >= self.capacity:
            raise RejectedExecutionError(
                f"rejected execution of thread task: {self._in_flight} already running or queued "
                f"(pool size {self.max_workers}, capacity {self.capacity})"
            )
        loop = asyncio.get_running_loop()
        self._in_flight += 1
        future = loop.run_in_executor(self._pool, fn, *args)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: asyncio.Future[Any]) -> None:
        self._in_flight -= 1

    def shutdown(self) -> None:
        """Stop accepting work; running threads finish on their own (they see their task's flag)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
