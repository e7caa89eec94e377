"""AsyncRun: the coroutine of an ``async def`` action's asyncio task, timing each of its steps.

A hand-written coroutine object, which is also the task's usage counters, rather than a wrapper
``async def``, a step-timing generator, a counters object and callbacks: it is the only object
the run adds around the action's own coroutine, and a node may hold 100k idle actions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from taskwarden.runtime.outcome import Outcome, failed, returned, shut_down
from taskwarden.runtime.resources import TaskUsage

if TYPE_CHECKING:
    from taskwarden.runtime.handle import AsyncTaskHandle
    from taskwarden.runtime.runner import ActionRunner, Finisher
    from taskwarden.tasks import Task

__all__ = ["AsyncRun"]


class AsyncRun(TaskUsage, Coroutine[Any, Any, None]):
    """Steps the action's coroutine; once it ends, hands the outcome to the runner.

    Whatever the action raises (a cancel included) becomes its outcome, so the asyncio task
    itself always ends normally, even when cancelled before its first step.
    """

    __slots__ = ("end", "finisher", "handle", "runner", "task", "work")

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
        # All but the runner are dropped once the run has ended (see _ended).
        self.task: Task | None = task
        self.work: Coroutine[Any, Any, Any] | None = work
        self.handle: AsyncTaskHandle | None = handle
        self.finisher = finisher
        self.end: asyncio.Future[Any] | None = end

    def send(self, value: Any) -> Any:
        return self._step(value, None)

    def __next__(self) -> Any:
        return self._step(None, None)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if not isinstance(typ, BaseException):
            typ = typ() if val is None else val
        return self._step(None, typ)

    def close(self) -> None:
        if self.work is not None:
            self.work.close()

    def __await__(self) -> AsyncRun:
        return self

    def __iter__(self) -> AsyncRun:
        return self

    def _step(self, value: Any, thrown: BaseException | None) -> Any:
        task, work = self.task, self.work
        if task is None or work is None:  # ended (asyncio never steps a finished coroutine)
            raise StopIteration
        self.loop_steps += 1
        started = time.thread_time_ns()
        try:
            yielded = work.send(value) if thrown is None else work.throw(thrown)
        except StopIteration as done:
            self.loop_cpu += time.thread_time_ns() - started
            self._ended(task, returned(task.action, done.value))
            raise StopIteration from None
        except (Exception, asyncio.CancelledError) as exc:
            self.loop_cpu += time.thread_time_ns() - started
            if isinstance(exc, asyncio.CancelledError):
                job = asyncio.current_task()  # the asyncio task stepping this run
                if job is not None:
                    job.uncancel()
            outcome = failed(task, exc)
            if exc is thrown:
                # The very error asyncio threw in (a cancel): its traceback holds this frame's
                # caller, which holds the error, a cycle only a full collection would free.
                exc.__traceback__ = None
            del exc, thrown
            self._ended(task, outcome)
            raise StopIteration from None
        except BaseException:
            self.loop_cpu += time.thread_time_ns() - started
            self._ended(task, shut_down())
            raise
        self.loop_cpu += time.thread_time_ns() - started
        return yielded

    def _ended(self, task: Task, outcome: Outcome) -> None:
        handle, finisher, end = self.handle, self.finisher, self.end
        # The task keeps this object as its usage counters: without references back to the
        # task and its handle, reference counting frees them all at once.
        self.task = self.work = self.handle = self.finisher = self.end = None
        assert handle is not None and end is not None
        self.runner.run_ended(task, handle, outcome, finisher, end)

    @property
    def label(self) -> str:
        """The task's id and action (hot threads names the asyncio task it samples by it)."""
        task = self.task
        return "ended" if task is None else f"{task.id} {task.action}"

    @property
    def __name__(self) -> str:
        """What asyncio's repr of the task shows as its coroutine."""
        return f"AsyncRun[{self.label}]"

    def __repr__(self) -> str:
        return f"<AsyncRun {self.label}>"
