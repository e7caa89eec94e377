"""LocalNode: the list, get and cancel operations one node performs on its own tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TypeVar, cast

from taskwarden.cluster.requests import (
    LIST_ACTION,
    CancelRequest,
    GetResult,
    ListRequest,
    NodeTasksResult,
    TaskFailure,
)
from taskwarden.errors import (
    EsTimeoutError,
    IllegalArgumentError,
    ResourceNotFoundError,
    TaskwardenError,
)
from taskwarden.store import ClusterStore
from taskwarden.tasks import (
    BY_USER_REQUEST,
    CancellableTask,
    CancellationService,
    CancelReason,
    Task,
    TaskFilter,
    TaskId,
    TaskInfo,
    TaskManager,
)
from taskwarden.timevalue import format_time_value

__all__ = ["DEFAULT_WAIT_NANOS", "LocalNode", "answers_of", "timed_out"]

DEFAULT_WAIT_NANOS = 30 * 10**9

T = TypeVar("T")


def timed_out(timeout_nanos: int) -> EsTimeoutError:
    return EsTimeoutError(
        f"timed out after [{format_time_value(timeout_nanos)}/{timeout_nanos // 1_000_000}ms]"
    )


async def _within(work: Awaitable[T], timeout_nanos: int | None) -> T:
    """Await ``work`` up to the request timeout (default 30s; -1 waits forever)."""
    nanos = DEFAULT_WAIT_NANOS if timeout_nanos is None else timeout_nanos
    if nanos < 0:
        return await work
    try:
        return await asyncio.wait_for(work, nanos / 1e9)
    except TimeoutError:
        raise timed_out(nanos) from None


async def answers_of(work: Sequence[Awaitable[T]]) -> list[T | TaskwardenError]:
    """Await every piece at once; a TaskwardenError is that piece's answer, any other exception
    is a bug and is raised. A single piece is awaited in place: gather would wrap it in a task
    and cost the answer an event-loop turn."""
    if len(work) == 1:
        try:
            return [await work[0]]
        except TaskwardenError as failure:
            return [failure]
    answers = await asyncio.gather(*work, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, TaskwardenError):
            raise answer
    return cast(list[T | TaskwardenError], answers)


class LocalNode:
    """Answers list, get and cancel for the tasks registered on this node."""

    def __init__(
        self,
        manager: TaskManager,
        cancellation: CancellationService,
        store: ClusterStore,
    ) -> None:
        self.manager = manager
        self.cancellation = cancellation
        self.store = store
        # Outcomes of ended background tasks while their storage is in flight, by task id.
        self.finishing: dict[str, GetResult] = {}

    @property
    def node_id(self) -> str:
        return self.manager.node_id

    async def list_tasks(self, request: ListRequest) -> NodeTasksResult:
        tasks = self.manager.matching(request.task_filter())
        if request.wait_for_completion:
            # Never wait on a list request, this one included (ES #17231).
            waited = [t for t in tasks if not t.action.startswith(LIST_ACTION)]
            await _within(self.manager.wait_for_removal(waited), request.timeout_nanos)
        now = self.manager.clock.monotonic_nanos()
        if request.rendered and not request.detailed and not request.human:
            return NodeTasksResult.summarized(self.node_id, tasks, now)
        infos = [t.info(detailed=request.detailed, now_nanos=now) for t in tasks]
        return NodeTasksResult(self.node_id, infos)

    async def cancel_tasks(
        self, request: CancelRequest, reason: CancelReason = BY_USER_REQUEST
    ) -> NodeTasksResult:
        if request.task_id is not None:
            targets = [self._cancel_target(request)]
        else:
            task_filter = TaskFilter(
                actions=request.actions, parent_id=request.parent_id, cancellable_only=True
            )
            targets = self.manager.matching(task_filter)
        result = NodeTasksResult(self.node_id)
        limit = -1 if request.timeout_nanos is None else request.timeout_nanos
        wait = request.wait_for_completion
        outcomes = await answers_of([
            _within(self.cancellation.cancel(t, reason, wait_for_completion=wait), limit)
            for t in targets
        ])
        if targets and not wait:
            # One loop turn for the cancelled coroutines to reach their cleanup before the
            # answer is rendered and sent, which would otherwise delay them.
            await asyncio.sleep(0)
        now = self.manager.clock.monotonic_nanos()
        for task, outcome in zip(targets, outcomes, strict=True):
            if isinstance(outcome, TaskwardenError):
                result.task_failures.append(TaskFailure(task.id.id, self.node_id, outcome))
                continue
            for failure in outcome:
                result.task_failures.append(TaskFailure(task.id.id, self.node_id, failure))
            result.tasks.append(task.info(detailed=False, now_nanos=now))
        return result

    def _cancel_target(self, request: CancelRequest) -> Task:
        assert request.task_id is not None
        task = self.manager.get(request.task_id)
        if task is None:
            raise ResourceNotFoundError(f"task [{request.task_id}] is not found")
        if not isinstance(task, CancellableTask):
            raise IllegalArgumentError(f"task [{request.task_id}] doesn't support cancellation")
        if not request.task_filter().matches(task):
            raise IllegalArgumentError(f"task [{request.task_id}] doesn't support this operation")
        return task

    async def get_task(
        self, task_id: TaskId, *, wait_for_completion: bool, timeout_nanos: int | None
    ) -> GetResult:
        task = self.manager.get(task_id)
        if task is None:
            return await self.stored_result(task_id)
        if not wait_for_completion:
            return GetResult(completed=False, task=task.info(detailed=True))
        await _within(self.manager.removal(task), timeout_nanos)
        try:
            return await self.stored_result(task_id)
        except ResourceNotFoundError:
            return GetResult(completed=True, task=task.info(detailed=True))

    async def stored_result(self, task_id: TaskId) -> GetResult:
        finishing = self.finishing.get(str(task_id))
        if finishing is not None:
            return finishing
        stored = await self.store.get_result(str(task_id))
        if stored is None:
            raise ResourceNotFoundError(
                f"task [{task_id}] isn't running and hasn't stored its results"
            )
        return GetResult(
            completed=stored.completed,
            task=TaskInfo.from_dict(stored.task),
            error=stored.error,
            response=stored.response,
            has_response=stored.completed and stored.error is None,
        )
