"""What an action sees of its task: status, cancellation checks, sleep, and child tasks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from taskwarden.runtime.resources import TaskUsage
from taskwarden.tasks import CancellableTask, Task, TaskId

if TYPE_CHECKING:
    from taskwarden.runtime.executors.processes import ProcessExecutor
    from taskwarden.runtime.executors.threads import ThreadExecutor

__all__ = ["AsyncTaskHandle", "ChildEnd", "ChildLauncher", "TaskHandle", "ThreadTaskHandle"]

T = TypeVar("T")


class ChildEnd(asyncio.Future[Any]):
    """A child task's end: its response, or its error. Cancelling the wait does not end it.

    Cancelling a task that awaits one takes effect once the child has ended (awaiting a gather
    of them with ``return_exceptions=True``: once all have). A future rather than a coroutine,
    so that a parent waiting on thousands of children holds no asyncio task per child.
    """

    __slots__ = ()

    def cancel(self, msg: Any | None = None) -> bool:
        return False

    @classmethod
    def failed(cls, error: BaseException) -> ChildEnd:
        """The end of a child that could not start."""
        end = cls(loop=asyncio.get_running_loop())
        end.set_exception(error)
        return end


class ChildLauncher(Protocol):
    """Starts child tasks for a parent, here or on another node (the cluster layer decides)."""

    def live_node_ids(self) -> list[str]: ...

    def start(
        self, parent: Task, action: str, params: dict[str, Any], *, node: str | None
    ) -> ChildEnd:
        """Start ``action`` as a child of ``parent``; never raises: a refusal is its end."""
        ...


class TaskHandle:
    """The part of a task every action may use, whatever executor it runs on."""

    __slots__ = ("_launcher", "_task")

    def __init__(self, task: Task, launcher: ChildLauncher) -> None:
        self._task = task
        self._launcher = launcher

    @property
    def id(self) -> str:
        return str(self._task.id)

    @property
    def task_id(self) -> TaskId:
        return self._task.id

    @property
    def action(self) -> str:
        return self._task.action

    @property
    def headers(self) -> dict[str, str]:
        return dict(self._task.headers)

    @property
    def parent_task_id(self) -> str | None:
        return str(self._task.parent_id) if self._task.parent_id.is_set else None

    @property
    def status(self) -> dict[str, Any] | None:
        status = self._task.status
        return status() if callable(status) else status

    @status.setter
    def status(self, value: dict[str, Any] | Callable[[], dict[str, Any]] | None) -> None:
        self._task.status = value

    @property
    def cancelled(self) -> bool:
        return self._task.is_cancelled

    @property
    def cancel_reason(self) -> str | None:
        task = self._task
        if isinstance(task, CancellableTask) and task.cancel_reason is not None:
            return task.cancel_reason.message
        return None

    def check_cancelled(self) -> None:
        """Raise TaskCancelledError if this task was cancelled."""
        task = self._task
        if isinstance(task, CancellableTask):
            task.check_cancelled()

    def nodes(self) -> list[str]:
        """Ids of the live nodes children can be sent to."""
        return self._launcher.live_node_ids()


class AsyncTaskHandle(TaskHandle):
    """Handle for ``async def`` actions; cancellation also arrives as ``asyncio.CancelledError``."""

    __slots__ = ("_processes", "_shields", "_threads")

    def __init__(
        self,
        task: Task,
        launcher: ChildLauncher,
        threads: ThreadExecutor,
        processes: ProcessExecutor,
    ) -> None:
        super().__init__(task, launcher)
        self._threads = threads
        self._processes = processes
        # Per asyncio task: how deep it is inside ``until_done``. Kept per task so that work
        # awaited from a side task does not shield the action's main coroutine from its cancel.
        # Created on first use: most running tasks never need it.
        self._shields: dict[asyncio.Task[Any] | None, int] | None = None

    @property
    def resource_usage(self) -> TaskUsage | None:
        """The task's usage counters (steps of its coroutine among them), if it has them."""
        usage = self._task.resource_stats
        return usage if isinstance(usage, TaskUsage) else None

    def shields(self, job: asyncio.Task[Any]) -> bool:
        """True while ``job`` waits on work that must finish before the task can end."""
        return self._shields is not None and self._shields.get(job, 0) > 0

    async def sleep(self, seconds: float) -> None:
        """Sleep, ending early with TaskCancelledError when the task is cancelled."""
        task = self._task
        if not isinstance(task, CancellableTask):
            await asyncio.sleep(seconds)
            return
        task.check_cancelled()
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake(_: object = None) -> None:
            if not woken.done():
                woken.set_result(None)

        timer = loop.call_later(seconds, wake)
        task.add_cancel_listener(wake)
        try:
            await woken
        finally:
            timer.cancel()
            task.remove_cancel_listener(wake)
        task.check_cancelled()

    async def until_done(self, work: Awaitable[T]) -> T:
        """Await ``work`` to its end even if the task is cancelled meanwhile (slow cleanup)."""
        future = asyncio.ensure_future(work)
        owner = asyncio.current_task()
        if self._shields is None:
            self._shields = {}
        shields = self._shields
        shields[owner] = shields.get(owner, 0) + 1
        try:
            while True:
                try:
                    return await asyncio.shield(future)
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if future.done() or current is None:
                        raise
                    current.uncancel()
        finally:
            depth = shields.pop(owner) - 1
            if depth:
                shields[owner] = depth
            # An error leaving here keeps this frame in its traceback, and both tasks hold the
            # error: without these references the frame closes no cycle, and the error is freed
            # by reference counting instead of waiting for a full collection.
            del future, owner

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking ``fn(thread_handle, *args)`` in the node's thread pool until it ends."""
        handle = ThreadTaskHandle(self._task, self._launcher, asyncio.get_running_loop())
        return await self.until_done(self._threads.submit(fn, handle, *args, task=self._task))

    async def run_in_process(
        self, fn: Callable[..., T], kwargs: dict[str, Any], *, grace: float | None = None
    ) -> T:
        """Run module-level ``fn(process_handle, **kwargs)`` in a worker process until it ends."""
        result: T = await self.until_done(
            self._processes.run(self._task, fn, kwargs, grace=grace)
        )
        return result

    def spawn(
        self, action: str, params: dict[str, Any] | None = None, *, node: str | None = None
    ) -> ChildEnd:
        """Start a child task (on ``node``, default this one); await it for its response.

        A cancel of the code awaiting it arrives once the child has ended; cancelling this
        task cancels its children by itself.
        """
        return self._launcher.start(self._task, action, dict(params or {}), node=node)

    async def spawn_on(
        self, nodes: Sequence[str] | str, action: str, params: dict[str, Any] | None = None
    ) -> list[Any]:
        """Start one child per node (``"_all"`` for every live node) and return their responses."""
        targets = self.nodes() if nodes == "_all" else list(nodes)
        return list(await asyncio.gather(*(self.spawn(action, params, node=n) for n in targets)))


class ThreadTaskHandle(TaskHandle):
    """Handle for plain ``def`` actions running in a worker thread; every call blocks."""

    __slots__ = ("_loop",)

    def __init__(
        self, task: Task, launcher: ChildLauncher, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(task, launcher)
        self._loop = loop

    def sleep(self, seconds: float) -> None:
        """Block up to ``seconds``; wake at once and raise TaskCancelledError on cancellation."""
        task = self._task
        if isinstance(task, CancellableTask):
            task.check_cancelled()
            if task.wait_cancelled(seconds):
                task.check_cancelled()
        else:
            time.sleep(seconds)

    def spawn(
        self, action: str, params: dict[str, Any] | None = None, *, node: str | None = None
    ) -> Any:
        """Start a child task from this thread and block until it returns its response."""
        coro = _child_response(self._launcher, self._task, action, dict(params or {}), node)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()


async def _child_response(
    launcher: ChildLauncher, parent: Task, action: str, params: dict[str, Any], node: str | None
) -> Any:
    """Start a child on the event loop (where tasks register) and wait for its end there."""
    return await launcher.start(parent, action, params, node=node)
