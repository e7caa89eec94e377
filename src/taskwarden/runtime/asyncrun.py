"""AsyncRun: the coroutine of an ``async def`` action's asyncio task, timing each of its steps.

A hand-written coroutine object, which is also the task's usage counters, rather than a wrapper
``async def``, a step-timing generator, a counters object and callbacks: it is the only object
the run adds around the action's own coroutine, and a node may hold 100k idle actions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, NoReturn

from taskwarden.runtime.outcome import Outcome, failed, returned, shut_down
from taskwarden.runtime.resources import TaskUsage

if TYPE_CHECKING:
    from taskwarden.runtime.handle import AsyncTaskHandle
    from taskwarden.runtime.runner import ActionRunner, Finisher
    from taskwarden.tasks import CancelReason, Task

__all__ = ["AsyncRun"]


class AsyncRun(TaskUsage, Coroutine[Any, Any, None]):
    """Steps the action's coroutine; once it ends, hands the outcome to the runner.

    Whatever the action raises (a cancel included) becomes its outcome, so the asyncio task
    itself always ends normally, even when cancelled before its first step.
    """

    __slots__ = ("end", "finisher", "handle", "job", "runner", "task", "work")

    def __init__(
        self,
        runner: ActionRunner,
        task: Task,
        work: Coroutine[Any, Any, Any],
        handle: AsyncTaskHandle,
        finisher: Finisher | None,
        end: asyncio.Future[Any],
    ) -> None:
        super().__init__()
        self.runner = runner
        self.task = task
        self.work = work
        self.handle = handle
        self.finisher = finisher
        self.end = end
        self.job: asyncio.Task[None] | None = None

    def send(self, value: Any) -> Any:
        return self._step(value, None)

    def __next__(self) -> Any:
        return self._step(None, None)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if not isinstance(typ, BaseException):
            typ = typ() if val is None else val
        return self._step(None, typ)

    def close(self) -> None:
        self.work.close()

    def __await__(self) -> AsyncRun:
        return self

    def __iter__(self) -> AsyncRun:
        return self

    def on_cancel(self, reason: CancelReason) -> None:
        """The task's cancel listener: cancel the asyncio task until the action has stopped."""
        if self.job is not None:
            self.runner.cancel_job(self.job, self.handle, reason)

    def _step(self, value: Any, thrown: BaseException | None) -> Any:
        self.loop_steps += 1
        started = time.thread_time_ns()
        try:
            yielded = self.work.send(value) if thrown is None else self.work.throw(thrown)
        except StopIteration as done:
            self.loop_cpu += time.thread_time_ns() - started
            self._ended(returned(self.task.action, done.value))
        except (Exception, asyncio.CancelledError) as exc:
            self.loop_cpu += time.thread_time_ns() - started
            if isinstance(exc, asyncio.CancelledError) and self.job is not None:
                self.job.uncancel()
            outcome = failed(self.task, exc)
            # Often the very error thrown in: this frame must not hold it as it leaves.
            del exc, thrown
            self._ended(outcome)
        except BaseException:
            self.loop_cpu += time.thread_time_ns() - started
            self.runner.run_ended(self.task, self.handle, shut_down(), self.finisher, self.end)
            raise
        self.loop_cpu += time.thread_time_ns() - started
        return yielded

    def _ended(self, outcome: Outcome) -> NoReturn:
        self.runner.run_ended(self.task, self.handle, outcome, self.finisher, self.end)
        raise StopIteration

    @property
    def label(self) -> str:
        """The task's id and action (hot threads names the asyncio task it samples by it)."""
        return f"{self.task.id} {self.task.action}"

    @property
    def __name__(self) -> str:
        """What asyncio's repr of the task shows as its coroutine."""
        return f"AsyncRun[{self.label}]"

    def __repr__(self) -> str:
        return f"<AsyncRun {self.label}>"
