"""ActionRunner: registers an action's task, runs it on its executor, reports its outcome."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from taskwarden.errors import (
    ActionFailedError,
    NoSuchNodeError,
    RejectedExecutionError,
    TaskCancelledError,
    TaskwardenError,
    es_type_of,
)
from taskwarden.runtime.executors.processes import ProcessExecutor
from taskwarden.runtime.executors.threads import ThreadExecutor
from taskwarden.runtime.handle import (
    AsyncTaskHandle,
    ChildEnd,
    ChildLauncher,
    ThreadTaskHandle,
)
from taskwarden.runtime.registry import ActionRegistry, ActionSpec
from taskwarden.runtime.resources import TaskUsage, timed_steps
from taskwarden.tasks import (
    EMPTY_TASK_ID,
    NODE_SHUTTING_DOWN,
    CancellableTask,
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


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a task ended: a JSON-able response or an error."""

    response: Any = None
    error: TaskwardenError | None = None


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
        # Ids of the action tasks registered and not yet ended (what the node limit counts).
        self._active: set[int] = set()
        # Bounds on what one node runs: actions at once, and children of one parent at once.
        self.max_tasks = DEFAULT_MAX_TASKS
        self.max_children_per_task = DEFAULT_MAX_CHILDREN_PER_TASK

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
        if len(self._active) >= self.max_tasks:
            raise RejectedExecutionError(
                f"rejected execution of [{spec.name}]: [{len(self._active)}] tasks are running "
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
        self._active.add(task.id.id)
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
        outcome: asyncio.Future[Any],
    ) -> None:
        loop = asyncio.get_running_loop()
        handle = AsyncTaskHandle(task, self.launcher, self.threads, self.processes)
        task.resource_stats = TaskUsage()
        # Named after the task: hot threads reports which task the event loop is busy with.
        job = loop.create_task(
            self._execute(task, spec, params, handle, finisher, outcome),
            name=f"{task.id} {task.action}",
        )
        # partial rather than lambdas: fewer objects per running task for the collector to walk.
        job.add_done_callback(
            functools.partial(self._ended_before_starting, task, finisher, outcome)
        )
        self._running[task.id.id] = job
        if self.observer is not None:
            self.observer.task_started(task)
        if spec.executor == "async" and isinstance(task, CancellableTask):
            task.add_cancel_listener(functools.partial(self._on_cancel, job, handle, loop.time()))

    def _on_cancel(
        self, job: asyncio.Task[None], handle: AsyncTaskHandle, started: float,
        reason: CancelReason,
    ) -> None:
        self._cancel_coroutine(job, handle, reason, 0.01, started)

    def _ended_before_starting(
        self, task: Task, finisher: Finisher | None, outcome: asyncio.Future[Any],
        _job: object = None,
    ) -> None:
        """A job cancelled before its first step never runs its ``finally``: finish it here."""
        if outcome.done():
            return
        error = (
            task.cancelled_error() if isinstance(task, CancellableTask) and task.is_cancelled
            else TaskCancelledError(f"task cancelled [{NODE_SHUTTING_DOWN}]")
        )
        result = Outcome(error=error)

        async def finish() -> None:
            finishing = None if finisher is None else finisher(task, result)
            try:
                self._ended(task, result, outcome)
                if finishing is not None:
                    await finishing
            finally:
                self._running.pop(task.id.id, None)

        self._running[task.id.id] = asyncio.get_running_loop().create_task(finish())

    async def _execute(
        self,
        task: Task,
        spec: ActionSpec,
        params: dict[str, Any],
        handle: AsyncTaskHandle,
        finisher: Finisher | None,
        outcome_future: asyncio.Future[Any],
    ) -> None:
        outcome: Outcome | None = None
        finishing: Awaitable[None] | None = None
        try:
            # One coroutine for the whole run, not one per stage: thousands may be waiting.
            try:
                response = await self._work(task, spec, params, handle)
                _check_json(spec.name, response)
                outcome = Outcome(response=response)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                outcome = Outcome(error=(
                    task.cancelled_error()
                    if isinstance(task, CancellableTask) and task.is_cancelled
                    else TaskCancelledError(f"task cancelled [{NODE_SHUTTING_DOWN}]")
                ))
            except TaskwardenError as exc:
                outcome = Outcome(error=exc)
            except Exception as exc:
                log.debug("action [%s] of task [%s] failed", spec.name, task.id, exc_info=True)
                outcome = Outcome(error=ActionFailedError(
                    str(exc) or type(exc).__name__, es_type=es_type_of(exc)
                ))
            if finisher is not None:
                finishing = finisher(task, outcome)
        finally:
            self._ended(task, outcome or Outcome(
                error=TaskCancelledError(f"task cancelled [{NODE_SHUTTING_DOWN}]")
            ), outcome_future)
            if finishing is None:
                self._running.pop(task.id.id, None)
        if finishing is not None:
            try:
                await handle.until_done(finishing)
            finally:
                self._running.pop(task.id.id, None)

    def _ended(self, task: Task, ended: Outcome, outcome: asyncio.Future[Any]) -> None:
        """The task's end: it leaves the registry (waiters wake) and its outcome is known."""
        self.manager.unregister(task)
        self._active.discard(task.id.id)
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

    def _work(
        self, task: Task, spec: ActionSpec, params: dict[str, Any], handle: AsyncTaskHandle
    ) -> Awaitable[Any]:
        """What the run awaits: the action's coroutine, or its end on a thread or a process."""
        if spec.executor == "async":
            usage = task.resource_stats
            work = spec.fn(handle, **params)
            return timed_steps(work, usage) if isinstance(usage, TaskUsage) else work
        if spec.executor == "thread":
            thread_handle = ThreadTaskHandle(task, self.launcher, asyncio.get_running_loop())
            call = functools.partial(spec.fn, thread_handle, **params)
            return handle.until_done(self.threads.submit(call, task=task))
        grace = spec.grace(params) if spec.grace is not None else None
        return handle.until_done(self.processes.run(task, spec.fn, params, grace=grace))

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
        """Wait until every running action has ended; False if some are still running."""
        jobs = list(self._running.values())
        if not jobs:
            return True
        _, pending = await asyncio.wait(jobs, timeout=timeout)
        return not pending


def _check_json(action: str, response: Any) -> None:
    try:
        orjson.dumps(response, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise ActionFailedError(
            f"action [{action}] returned a response that is not JSON: {exc}",
            es_type="illegal_state_exception",
        ) from None


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
