"""ActionRunner: registers an action's task, runs it on its executor, reports its outcome."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

from taskwarden.errors import NoSuchNodeError, RejectedExecutionError, TaskwardenError
from taskwarden.runtime.asyncrun import AsyncRun
from taskwarden.runtime.executors.processes import ProcessExecutor
from taskwarden.runtime.executors.threads import ThreadExecutor
from taskwarden.runtime.handle import (
    AsyncTaskHandle,
    ChildEnd,
    ChildLauncher,
    ThreadTaskHandle,
)
from taskwarden.runtime.outcome import Outcome, failed, returned, shut_down
from taskwarden.runtime.registry import ActionRegistry, ActionSpec
from taskwarden.runtime.resources import TaskUsage
from taskwarden.tasks import (
    EMPTY_TASK_ID,
    CancelReason,
    Task,
    TaskId,
    TaskManager,
)

__all__ = [
    "DEFAULT_MAX_CHILDREN_PER_TASK",
    "DEFAULT_MAX_TASKS",
    "ActionRunner",
    "LocalLauncher",
    "Outcome",
    "RunObserver",
]

log = logging.getLogger(__name__)

_STUCK_AFTER_S = 30.0
DEFAULT_MAX_TASKS = 200_000
DEFAULT_MAX_CHILDREN_PER_TASK = 100_000


Finisher = Callable[[Task, Outcome], Awaitable[None]]
"""Called with a task's outcome while the task is still registered; what it returns is awaited
once the task has unregistered (storing an outcome must not hold up those waiting for the end)."""


class RunObserver(Protocol):
    """Told when an action's task starts and how it ended (the node's metrics)."""

    def task_started(self, task: Task) -> None: ...

    def task_ended(self, task: Task, error: TaskwardenError | None) -> None: ...


class ActionRunner:
    """Runs registered actions as tasks on the async, thread or process executor."""

    def __init__(
        self,
        manager: TaskManager,
        registry: ActionRegistry,
        *,
        threads: ThreadExecutor,
        processes: ProcessExecutor,
    ) -> None:
        self.manager = manager
        self.registry = registry
        self.threads = threads
        self.processes = processes
        self.launcher: ChildLauncher = LocalLauncher(self)
        self.observer: RunObserver | None = None
        self._running: dict[int, asyncio.Task[None]] = {}
        # Action tasks registered and not yet ended (what the node limit counts).
        self._live = 0
        # Bounds on what one node runs: actions at once, and children of one parent at once.
        self.max_tasks = DEFAULT_MAX_TASKS
        self.max_children_per_task = DEFAULT_MAX_CHILDREN_PER_TASK
        manager.add_cancel_listener(self._task_cancelled)

    def prepare(self, action: str, body: Mapping[str, Any]) -> tuple[ActionSpec, dict[str, Any]]:
        """Find the action and check its parameters before anything is registered."""
        spec = self.registry.get(action)
        return spec, spec.check_params(body)

    def register(
        self,
        spec: ActionSpec,
        params: Mapping[str, Any],
        *,
        parent_id: TaskId = EMPTY_TASK_ID,
        headers: dict[str, str] | None = None,
        type: str = "transport",
    ) -> Task:
        """Register the task for one run; raises TaskCancelledError under a banned parent and
        RejectedExecutionError (429) past the node's limits."""
        if self._live >= self.max_tasks:
            raise RejectedExecutionError(
                f"rejected execution of [{spec.name}]: [{self._live}] tasks are running "
                f"on this node, its limit is [{self.max_tasks}]"
            )
        if parent_id.is_set:
            siblings = self.manager.child_count(parent_id)
            if siblings >= self.max_children_per_task:
                raise RejectedExecutionError(
                    f"rejected execution of [{spec.name}]: task [{parent_id}] already has "
                    f"[{siblings}] children running on this node, its limit is "
                    f"[{self.max_children_per_task}]"
                )
        task = self.manager.register(
            type,
            spec.name,
            parent_id=parent_id,
            headers=headers,
            description=spec.description,
            cancellable=spec.is_cancellable(params),
        )
        self._live += 1
        return task

    def launch(
        self,
        task: Task,
        spec: ActionSpec,
        params: dict[str, Any],
        *,
        finisher: Finisher | None = None,
    ) -> asyncio.Future[Outcome]:
        """Start running a registered task; the future resolves after it has unregistered."""
        outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._launch(task, spec, params, finisher, outcome)
        return outcome

    def launch_child(self, task: Task, spec: ActionSpec, params: dict[str, Any]) -> ChildEnd:
        """Start running a registered child task; its end is its response or its error."""
        end = ChildEnd(loop=asyncio.get_running_loop())
        self._launch(task, spec, params, None, end)
        return end

    def _launch(
        self,
        task: Task,
        spec: ActionSpec,
        params: dict[str, Any],
        finisher: Finisher | None,
        end: asyncio.Future[Any],
    ) -> None:
        loop = asyncio.get_running_loop()
        handle = AsyncTaskHandle(task, self.launcher, self.threads, self.processes)
        run: AsyncRun | None = None
        job: asyncio.Task[None]
        if spec.executor == "async":
            run = AsyncRun(self, task, _coroutine(spec, handle, params), handle, finisher, end)
            task.resource_stats = run
            # Named after the action, a string every run of it shares; hot threads finds the
            # task's id through the coroutine.
            job = loop.create_task(run, name=task.action)
        else:
            task.resource_stats = TaskUsage()
            job = loop.create_task(self._execute(task, spec, params, handle, finisher, end),
                                   name=f"{task.id} {task.action}")
            # partial rather than a lambda: fewer objects per running task for the collector.
            job.add_done_callback(
                functools.partial(self._ended_before_starting, task, handle, finisher, end)
            )
        self._running[task.id.id] = job
        if self.observer is not None:
            self.observer.task_started(task)
        if run is not None and task.cancel_reason is not None:
            self._task_cancelled(task, task.cancel_reason)

    def _ended_before_starting(
        self, task: Task, handle: AsyncTaskHandle, finisher: Finisher | None,
        end: asyncio.Future[Any], _job: object = None,
    ) -> None:
        """A job cancelled before its first step never runs its ``finally``: finish it here.
        Asked of the registry, not of ``end``: a waiter may have cancelled that future."""
        if self.manager.get(task.id) is task:
            self.run_ended(task, handle, failed(task, asyncio.CancelledError()), finisher, end)

    async def _execute(
        self,
        task: Task,
        spec: ActionSpec,
        params: dict[str, Any],
        handle: AsyncTaskHandle,
        finisher: Finisher | None,
        end: asyncio.Future[Any],
    ) -> None:
        """A thread or process action's run: its end awaited on the event loop."""
        outcome: Outcome | None = None
        try:
            try:
                if spec.executor == "thread":
                    thread_handle = ThreadTaskHandle(task, self.launcher,
                                                     asyncio.get_running_loop())
                    call = functools.partial(spec.fn, thread_handle, **params)
                    response = await handle.until_done(self.threads.submit(call, task=task))
                else:
                    grace = spec.grace(params) if spec.grace is not None else None
                    response = await handle.until_done(
                        self.processes.run(task, spec.fn, params, grace=grace)
                    )
                outcome = returned(spec.name, response)
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError):
                    current = asyncio.current_task()
                    if current is not None:
                        current.uncancel()
                outcome = failed(task, exc)
        finally:
            self.run_ended(task, handle, outcome or shut_down(), finisher, end)

    def run_ended(
        self, task: Task, handle: AsyncTaskHandle, outcome: Outcome, finisher: Finisher | None,
        end: asyncio.Future[Any],
    ) -> None:
        """A run is over: the finisher sees the outcome, the task unregisters, waiters wake;
        what the finisher returned is awaited afterwards."""
        finishing: Awaitable[None] | None = None
        try:
            if finisher is not None:
                finishing = finisher(task, outcome)
        finally:
            self._ended(task, outcome, end)
            if finishing is None:
                self._running.pop(task.id.id, None)
            else:
                self._running[task.id.id] = asyncio.get_running_loop().create_task(
                    self._finishing(task, handle, finishing)
                )

    async def _finishing(
        self, task: Task, handle: AsyncTaskHandle, finishing: Awaitable[None]
    ) -> None:
        try:
            await handle.until_done(finishing)
        finally:
            self._running.pop(task.id.id, None)

    def _ended(self, task: Task, ended: Outcome, outcome: asyncio.Future[Any]) -> None:
        """The task's end: it leaves the registry (waiters wake) and its outcome is known."""
        self.manager.unregister(task)
        self._live -= 1
        if self.observer is not None:
            self.observer.task_ended(task, ended.error)
        if outcome.done():
            return
        if not isinstance(outcome, ChildEnd):
            outcome.set_result(ended)
        elif ended.error is None:
            outcome.set_result(ended.response)
        else:
            outcome.set_exception(ended.error)

    def _task_cancelled(self, task: Task, reason: CancelReason) -> None:
        """An asyncio action's task was cancelled: cancel its asyncio task, and again until the
        action has stopped."""
        job = self._running.get(task.id.id)
        if job is None:
            return
        run = job.get_coro()
        if isinstance(run, AsyncRun) and run.task is task and run.handle is not None:
            self._cancel_coroutine(job, run.handle, reason, 0.01, job.get_loop().time())

    def _cancel_coroutine(
        self,
        job: asyncio.Task[None],
        handle: AsyncTaskHandle,
        reason: CancelReason,
        delay: float,
        started: float,
        steps_seen: int = -1,
    ) -> None:
        """Cancel the action's coroutine, and again until it ends: a coroutine may swallow one.

        Again only if the coroutine has run since the last cancel: one still waiting (say on a
        gather of thousands of children that are stopping) has not swallowed anything, and each
        cancel would be passed on to every child once more.
        """
        if job.done():
            return
        usage = handle.resource_usage
        steps = usage.loop_steps if usage is not None else steps_seen - 1
        if steps != steps_seen and not handle.shields(job):
            job.cancel(f"task cancelled [{reason}]")
        loop = job.get_loop()
        if delay >= 1.0 and loop.time() - started > _STUCK_AFTER_S:
            log.warning("task [%s] still running %.0fs after it was cancelled", handle.id,
                        loop.time() - started)
            started = loop.time()
        loop.call_later(
            delay, self._cancel_coroutine, job, handle, reason, min(delay * 2, 1.0), started,
            steps,
        )

    async def wait_all(self, timeout: float) -> bool:
        """Wait until every running action has ended and its outcome is stored; False if some
        are still running after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._running:
            left = deadline - loop.time()
            if left <= 0:
                return False
            # A run that ends hands its outcome to a new task: look again until none is left.
            await asyncio.wait(list(self._running.values()), timeout=left)
        return True


def _coroutine(
    spec: ActionSpec, handle: AsyncTaskHandle, params: dict[str, Any]
) -> Coroutine[Any, Any, Any]:
    """The action's coroutine; a failure to even create it becomes the run's error."""
    try:
        work = spec.fn(handle, **params)
    except Exception as exc:
        return _raise(exc)
    return work if isinstance(work, Coroutine) else _await(work)


async def _raise(exc: Exception) -> Any:
    raise exc


async def _await(work: Awaitable[Any]) -> Any:
    return await work


class LocalLauncher:
    """Starts children on this node only (a one-node cluster)."""

    def __init__(self, runner: ActionRunner) -> None:
        self._runner = runner

    def live_node_ids(self) -> list[str]:
        return [self._runner.manager.node_id]

    def start(
        self, parent: Task, action: str, params: dict[str, Any], *, node: str | None
    ) -> ChildEnd:
        runner = self._runner
        if node not in (None, runner.manager.node_id):
            return ChildEnd.failed(NoSuchNodeError(f"No such node [{node}]",
                                                   metadata={"node_id": node}))
        try:
            spec, checked = runner.prepare(action, params)
            task = runner.register(
                spec, checked, parent_id=parent.id, headers=parent.headers, type="direct"
            )
        except TaskwardenError as exc:
            return ChildEnd.failed(exc)
        return runner.launch_child(task, spec, checked)
