"""ClusterService: coordinates list, get, cancel and action runs over the selected nodes."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from taskwarden.cluster.children import ChildRun
from taskwarden.cluster.local import LocalNode, answers_of
from taskwarden.cluster.membership import Membership
from taskwarden.cluster.nodes import NodeInfo, resolve_nodes
from taskwarden.cluster.requests import (
    CancelRequest,
    ClusterTasksResult,
    GetResult,
    ListRequest,
    NodeTasksResult,
)
from taskwarden.cluster.stats import node_stats
from taskwarden.cluster.transport import NodeTransport, ParentRef
from taskwarden.diagnostics.hot_threads import WorkOnThreads, hot_threads_report
from taskwarden.diagnostics.request import HotThreadsRequest, node_block
from taskwarden.errors import (
    FailedNodeError,
    NodeNotConnectedError,
    NoSuchNodeError,
    ResourceNotFoundError,
    StoreUnavailableError,
    TaskwardenError,
)
from taskwarden.metrics import NodeMetrics
from taskwarden.runtime.runner import ActionRunner, Outcome
from taskwarden.store import ClusterStore
from taskwarden.tasks import (
    CancellationService,
    CancelReason,
    CancelSource,
    Task,
    TaskId,
    TaskInfo,
    TaskManager,
)

__all__ = ["OUTCOME_RETRY_S", "ClusterService"]

OUTCOME_RETRY_S = 300.0

log = logging.getLogger(__name__)

T = TypeVar("T")

LocalOp = Callable[[], Awaitable[NodeTasksResult]]
RemoteOp = Callable[[NodeInfo, ParentRef], Awaitable[NodeTasksResult]]


class RestTask:
    """A registered REST request's task, unregistered when its ``async with`` block ends."""

    __slots__ = ("_manager", "_task")

    def __init__(self, manager: TaskManager, task: Task) -> None:
        self._manager = manager
        self._task = task

    async def __aenter__(self) -> Task:
        return self._task

    async def __aexit__(self, *exc_info: object) -> None:
        self._manager.unregister(self._task)


class ClusterService:
    """Any node coordinates any request: pick nodes, ask each, merge answers and failures."""

    def __init__(
        self,
        manager: TaskManager,
        cancellation: CancellationService,
        local: LocalNode,
        membership: Membership,
        runner: ActionRunner,
        store: ClusterStore,
        transport: NodeTransport,
        *,
        cluster_name: str,
        cluster_uuid: str,
        secret: str,
    ) -> None:
        self.cluster_name = cluster_name
        self.secret = secret
        self.cluster_uuid = cluster_uuid
        self.manager = manager
        self.cancellation = cancellation
        self.local = local
        self.membership = membership
        self.runner = runner
        self.store = store
        self.transport = transport
        self._background: set[asyncio.Task[Any]] = set()
        self.metrics: NodeMetrics | None = None

    @property
    def node_id(self) -> str:
        return self.manager.node_id

    # REST requests as tasks ------------------------------------------------------------

    def rest_task(
        self, action: str, headers: dict[str, str], *, cancellable: bool = True
    ) -> RestTask:
        """Register a REST request as a task for as long as it runs (``async with``)."""
        task = self.manager.register("transport", action, headers=headers, cancellable=cancellable)
        return RestTask(self.manager, task)

    async def cancel_task(self, task: Task, reason: CancelReason) -> None:
        """Cancel one local task and its tree without waiting (client went away, shutdown)."""
        if task.cancellable:
            await self.cancellation.cancel(task, reason)

    # nodes -----------------------------------------------------------------------------

    def nodes(self, selectors: Sequence[str] = ()) -> list[NodeInfo]:
        return resolve_nodes(selectors, self.membership.live_nodes(), self.node_id)

    async def nodes_stats(self, nodes: Sequence[NodeInfo]) -> dict[str, dict[str, Any]]:
        """Each node's own figures (``_cat/nodes``); a node that does not answer has none."""
        answers = await self._ask_each(
            nodes, lambda node: _async_value(node_stats(node)), self.transport.node_stats
        )
        return {
            node.node_id: answer for node, answer in answers
            if not isinstance(answer, TaskwardenError)
        }

    async def _ask_each(
        self,
        nodes: Sequence[NodeInfo],
        here: Callable[[NodeInfo], Awaitable[T]],
        remote: Callable[[NodeInfo], Awaitable[T]],
    ) -> list[tuple[NodeInfo, T | TaskwardenError]]:
        """Ask every node at once (this one directly, the others over HTTP); a node's
        TaskwardenError is its answer, any other exception is a bug and is raised."""
        answers = await answers_of(
            [here(n) if n.node_id == self.node_id else remote(n) for n in nodes]
        )
        return list(zip(nodes, answers, strict=True))

    # hot threads -----------------------------------------------------------------------

    async def hot_threads(self, request: HotThreadsRequest, selectors: Sequence[str]) -> str:
        """Every selected node's report in its ``:::`` block; a node that fails says why."""
        answers = await self._ask_each(
            self.nodes(selectors),
            lambda _: self.local_hot_threads(request),
            lambda node: self.transport.hot_threads(node, request),
        )
        blocks: list[str] = []
        for node, report in answers:
            if isinstance(report, TaskwardenError):
                if self.metrics is not None:
                    self.metrics.fan_out_failure(node.node_id)
                report = f"node failed to answer: {report.es_type}: {report.reason}"
            blocks.append(node_block(node.hot_threads_header(), report))
        return "".join(blocks)

    async def local_hot_threads(self, request: HotThreadsRequest) -> str:
        """Sample this node's threads on a worker thread, so the event loop is seen at work."""
        work = WorkOnThreads(
            thread_tasks=self._thread_labels,
            process_tasks=lambda: {
                pid: f"{task.id} {task.action}"
                for pid, task in self.runner.processes.tasks_by_pid().items()
            },
            loop=asyncio.get_running_loop(),
            loop_thread=threading.get_ident(),
        )
        now = self.manager.clock.epoch_millis()
        return await asyncio.to_thread(hot_threads_report, request, work, now)

    def _thread_labels(self) -> dict[int, list[str]]:
        labels: dict[int, list[str]] = {}
        for ident, task in self.runner.threads.tasks_by_thread().items():
            labels.setdefault(ident, []).append(f"{task.id} {task.action}")
        return labels

    # list / cancel ---------------------------------------------------------------------

    async def list_tasks(
        self, request: ListRequest, selectors: Sequence[str], parent: Task
    ) -> ClusterTasksResult:
        async def local() -> NodeTasksResult:
            answer = await self.local.list_tasks(request)
            return answer.render(human=request.human) if request.rendered else answer

        return await self._fan_out(
            self.nodes(selectors), parent, local,
            lambda node, ref: self.transport.list_tasks(node, request, ref),
        )

    async def cancel_tasks(
        self, request: CancelRequest, selectors: Sequence[str], parent: Task
    ) -> ClusterTasksResult:
        if request.task_id is not None:
            owner = self.membership.get(request.task_id.node_id)
            if owner is None:
                result = ClusterTasksResult()
                missing = request.task_id.node_id
                result.node_failures.append(
                    FailedNodeError(
                        missing,
                        caused_by=NoSuchNodeError(
                            f"No such node [{missing}]", metadata={"node_id": missing}
                        ),
                    )
                )
                return result
            targets = [owner]
        else:
            targets = self.nodes(selectors)
        return await self._fan_out(
            targets, parent,
            lambda: self.local.cancel_tasks(request),
            lambda node, ref: self.transport.cancel_tasks(node, request, ref),
        )

    async def serve_node_request(self, parent: ParentRef, op: LocalOp) -> NodeTasksResult:
        """Another node's list or cancel, run here as the ``<action>[n]`` child of its task."""
        child = self.manager.register(
            "direct", parent.action + "[n]", parent_id=parent.task_id, headers=parent.headers,
            cancellable=parent.cancellable,
        )
        try:
            return await op()
        finally:
            self.manager.unregister(child)

    async def _fan_out(
        self, targets: Sequence[NodeInfo], parent: Task, local_op: LocalOp, remote_op: RemoteOp
    ) -> ClusterTasksResult:
        ref = ParentRef.of(parent)
        result = ClusterTasksResult()
        answers = await self._ask_each(
            targets,
            lambda _: self.serve_node_request(ref, local_op),
            lambda node: remote_op(node, ref),
        )
        for node, answer in answers:
            if isinstance(answer, TaskwardenError):
                result.node_failures.append(FailedNodeError(node.node_id, caused_by=answer))
                if self.metrics is not None:
                    self.metrics.fan_out_failure(node.node_id)
            else:
                result.nodes[node.node_id] = node
                result.tasks.extend(answer.tasks)
                result.task_failures.extend(answer.task_failures)
                if answer.rendered is not None and answer.rendered_count:
                    result.rendered[node.node_id] = answer.rendered
        return result

    # get -------------------------------------------------------------------------------

    async def get_task(
        self, task_id: TaskId, *, wait_for_completion: bool, timeout_nanos: int | None
    ) -> GetResult:
        if task_id.node_id == self.node_id:
            return await self.local.get_task(
                task_id, wait_for_completion=wait_for_completion, timeout_nanos=timeout_nanos
            )
        owner = self.membership.get(task_id.node_id)
        if owner is not None:
            try:
                return await self.transport.get_task(
                    owner, task_id, wait_for_completion=wait_for_completion,
                    timeout_nanos=timeout_nanos,
                )
            except NodeNotConnectedError:
                log.info("node [%s] unreachable for get of [%s]; answering from the store",
                         owner.node_id, task_id)
        try:
            return await self.local.stored_result(task_id)
        except ResourceNotFoundError as not_stored:
            raise ResourceNotFoundError(
                f"task [{task_id}] belongs to the node [{task_id.node_id}] which isn't part of "
                "the cluster and there is no record of the task",
                caused_by=not_stored,
            ) from None

    # actions ---------------------------------------------------------------------------

    async def start_action(
        self,
        action: str,
        body: dict[str, Any],
        headers: dict[str, str],
        *,
        background: bool,
    ) -> tuple[Task, asyncio.Future[Outcome]]:
        """Register and start an action; a background one is journaled before it runs."""
        spec, params = self.runner.prepare(action, body)
        task = self.runner.register(spec, params, headers=headers)
        if not background:
            return task, self.runner.launch(task, spec, params)
        # The task starts while its journal row is written (its first step is scheduled before
        # the write's); its id is handed out only once the row is committed, and its outcome is
        # stored only after the row.
        info = _stored_info(task)
        journaled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        finisher = functools.partial(self._store_outcome, journaled)
        outcome = self.runner.launch(task, spec, params, finisher=finisher)
        journal = asyncio.ensure_future(self._journal(str(task.id), info, journaled))
        try:
            await asyncio.shield(journal)
        except asyncio.CancelledError:
            raise
        except BaseException as failure:
            reason = CancelReason(f"its start could not be recorded: {failure}", CancelSource.USER)
            await self.cancellation.cancel(task, reason)
            raise
        return task, outcome

    def start_children(
        self, parent: ParentRef, children: list[tuple[str, dict[str, Any]]]
    ) -> ChildRun:
        """Run children another node's task asked for; under a banned parent each is refused."""
        run = ChildRun(self._cancel_soon)
        for index, (action, params) in enumerate(children):
            try:
                spec, checked = self.runner.prepare(action, params)
                task = self.runner.register(
                    spec, checked, parent_id=parent.task_id, headers=parent.headers,
                    type="direct",
                )
            except TaskwardenError as refused:
                run.refused(index, refused)
                continue
            run.started(index, task, self.runner.launch(task, spec, checked))
        return run

    def _cancel_soon(self, task: Task, reason: CancelReason) -> None:
        if not task.cancellable:
            return
        job = asyncio.get_running_loop().create_task(self.cancellation.cancel(task, reason))
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def _journal(
        self, task_id: str, info: dict[str, Any], journaled: asyncio.Future[None]
    ) -> None:
        try:
            await self.store.journal_task(task_id, self.node_id, info)
        except asyncio.CancelledError:
            journaled.cancel()
            raise
        except BaseException as failure:
            journaled.set_exception(failure)
            raise
        journaled.set_result(None)

    def _store_outcome(
        self, journal: asyncio.Future[None], task: Task, outcome: Outcome
    ) -> Awaitable[None]:
        """Called before ``task`` unregisters: until stored, its outcome is answered from memory."""
        info = _stored_info(task)
        error = None if outcome.error is None else outcome.error.to_dict()
        key = str(task.id)
        self.local.finishing[key] = GetResult(
            completed=True, task=TaskInfo.from_dict(info), error=error,
            response=outcome.response, has_response=error is None,
        )
        return self._write_outcome(journal, key, info, outcome.response, error)

    async def _write_outcome(
        self, journal: asyncio.Future[None], key: str, info: dict[str, Any], response: Any,
        error: dict[str, Any] | None,
    ) -> None:
        try:
            await asyncio.wait([journal])
            if journal.cancelled() or journal.exception() is not None:
                return  # never recorded: its start was refused (503), there is no row to complete
            await self._store_with_retries(key, info, response, error)
        except TaskwardenError:
            # The journal row stays unfinished; the next start of this node reports it failed.
            log.exception("could not store the outcome of task [%s]", key)
        finally:
            self.local.finishing.pop(key, None)

    async def _store_with_retries(
        self, key: str, info: dict[str, Any], response: Any, error: dict[str, Any] | None
    ) -> None:
        """A busy or briefly unreachable store does not lose an outcome: it is tried again
        (answered from memory meanwhile) for up to ``OUTCOME_RETRY_S``."""
        deadline = asyncio.get_running_loop().time() + OUTCOME_RETRY_S
        pause = 0.1
        while True:
            try:
                await self.store.store_result(
                    key, self.node_id, info, response=response, error=error
                )
                return
            except StoreUnavailableError as exc:
                if asyncio.get_running_loop().time() + pause > deadline:
                    raise
                log.warning("storing the outcome of task [%s] failed, retrying: %s", key, exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)


def _stored_info(task: Task) -> dict[str, Any]:
    """The task as stored: no ``cancelled`` field, as in Elasticsearch's ``.tasks`` index."""
    info = task.info(detailed=True).to_dict()
    info.pop("cancelled", None)
    return info


async def _async_value(value: T) -> T:
    return value
