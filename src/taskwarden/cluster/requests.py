"""The requests and results that travel between the coordinating node and the nodes it asks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from taskwarden.cluster.nodes import NodeInfo
from taskwarden.errors import FailedNodeError, TaskwardenError, error_from_dict
from taskwarden.tasks import Task, TaskFilter, TaskId, TaskInfo

__all__ = [
    "CancelRequest",
    "ClusterTasksResult",
    "GetResult",
    "ListRequest",
    "NodeTasksResult",
    "TaskFailure",
]

LIST_ACTION = "cluster:monitor/tasks/lists"
GET_ACTION = "cluster:monitor/task/get"
CANCEL_ACTION = "cluster:admin/tasks/cancel"


@dataclass(frozen=True)
class ListRequest:
    """``GET /_tasks`` after parsing."""

    actions: tuple[str, ...] = ()
    parent_id: TaskId | None = None
    detailed: bool = False
    wait_for_completion: bool = False
    timeout_nanos: int | None = None
    # Answer with the tasks already rendered as the ``group_by=nodes`` JSON object (``human``
    # fields included or not), which the coordinating node embeds without parsing it.
    rendered: bool = False
    human: bool = False

    def task_filter(self) -> TaskFilter:
        return TaskFilter(actions=self.actions, parent_id=self.parent_id)

    def to_dict(self) -> dict[str, Any]:
        """The internal wire form sent to the other nodes."""
        return {
            "actions": list(self.actions),
            "parent_task_id": _id_text(self.parent_id),
            "detailed": self.detailed,
            "wait_for_completion": self.wait_for_completion,
            "timeout_nanos": self.timeout_nanos,
            "rendered": self.rendered,
            "human": self.human,
        }

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> ListRequest:
        return cls(
            actions=tuple(str(a) for a in body.get("actions") or ()),
            parent_id=_id_of(body.get("parent_task_id")),
            detailed=bool(body.get("detailed", False)),
            wait_for_completion=bool(body.get("wait_for_completion", False)),
            timeout_nanos=_optional_int(body.get("timeout_nanos")),
            rendered=bool(body.get("rendered", False)),
            human=bool(body.get("human", False)),
        )


@dataclass(frozen=True)
class CancelRequest:
    """``POST /_tasks/_cancel`` after parsing."""

    task_id: TaskId | None = None
    actions: tuple[str, ...] = ()
    parent_id: TaskId | None = None
    wait_for_completion: bool = False
    timeout_nanos: int | None = None

    def task_filter(self) -> TaskFilter:
        return TaskFilter(
            actions=self.actions, parent_id=self.parent_id, task_id=self.task_id
        )

    def to_dict(self) -> dict[str, Any]:
        """The internal wire form sent to the other nodes."""
        return {
            "task_id": _id_text(self.task_id),
            "actions": list(self.actions),
            "parent_task_id": _id_text(self.parent_id),
            "wait_for_completion": self.wait_for_completion,
            "timeout_nanos": self.timeout_nanos,
        }

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> CancelRequest:
        return cls(
            task_id=_id_of(body.get("task_id")),
            actions=tuple(str(a) for a in body.get("actions") or ()),
            parent_id=_id_of(body.get("parent_task_id")),
            wait_for_completion=bool(body.get("wait_for_completion", False)),
            timeout_nanos=_optional_int(body.get("timeout_nanos")),
        )


@dataclass(frozen=True)
class TaskFailure:
    """A failure about one task on one node (``task_failures`` entries)."""

    task_id: int
    node_id: str
    error: TaskwardenError

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "node_id": self.node_id,
            "status": self.error.status_name,
            "reason": self.error.to_dict(),
        }

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> TaskFailure:
        reason = body.get("reason")
        error = error_from_dict(reason if isinstance(reason, dict) else {"reason": str(reason)})
        return cls(int(body["task_id"]), str(body["node_id"]), error)


@dataclass
class NodeTasksResult:
    """One node's answer to a list or cancel request.

    ``rendered``, when set, replaces ``tasks``: the node's ``{task id: task}`` JSON object,
    encoded once by the node that owns the tasks and embedded as is by the coordinating node.
    """

    node_id: str
    tasks: list[TaskInfo] = field(default_factory=list)
    task_failures: list[TaskFailure] = field(default_factory=list)
    rendered: bytes | None = None
    rendered_count: int = 0

    @classmethod
    def summarized(cls, node_id: str, tasks: Sequence[Task], now_nanos: int) -> NodeTasksResult:
        """The rendered answer for non-detailed tasks, encoded straight from the tasks."""
        raw = orjson.dumps({f"{t.id.node_id}:{t.id.id}": t.summary(now_nanos) for t in tasks})
        return cls(node_id, [], [], raw, len(tasks))

    def render(self, *, human: bool) -> NodeTasksResult:
        """The same answer with its tasks encoded as the ``group_by=nodes`` object."""
        if self.rendered is not None:
            return self
        raw = orjson.dumps(
            {info.task_id: info.to_dict(human=human) for info in self.tasks},
            option=orjson.OPT_NON_STR_KEYS,
        )
        return NodeTasksResult(self.node_id, [], self.task_failures, raw, len(self.tasks))

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "tasks": [t.to_dict() for t in self.tasks],
            "task_failures": [f.to_dict() for f in self.task_failures],
        }

    def to_wire(self) -> bytes:
        """Plain JSON, or for a rendered answer a one-line JSON header, a newline, the tasks."""
        if self.rendered is None:
            return orjson.dumps(self.to_dict(), option=orjson.OPT_NON_STR_KEYS)
        header = {
            "node_id": self.node_id,
            "task_failures": [f.to_dict() for f in self.task_failures],
            "rendered_count": self.rendered_count,
        }
        return orjson.dumps(header) + b"\n" + self.rendered

    @classmethod
    def from_wire(cls, content: bytes) -> NodeTasksResult:
        """Parse :meth:`to_wire` (compact JSON never holds a raw newline)."""
        header, newline, rendered = content.partition(b"\n")
        body = orjson.loads(header)
        if not isinstance(body, dict):
            raise ValueError("a node's tasks answer must be a JSON object")
        result = cls.from_dict(body)
        if newline:
            result.rendered = rendered
            result.rendered_count = int(body.get("rendered_count", 0))
        return result

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> NodeTasksResult:
        return cls(
            str(body["node_id"]),
            [TaskInfo.from_dict(t) for t in body.get("tasks") or ()],
            [TaskFailure.from_dict(f) for f in body.get("task_failures") or ()],
        )


@dataclass
class ClusterTasksResult:
    """The merged answer of every selected node."""

    tasks: list[TaskInfo] = field(default_factory=list)
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    node_failures: list[FailedNodeError] = field(default_factory=list)
    task_failures: list[TaskFailure] = field(default_factory=list)
    # Pre-rendered answers (see ListRequest.rendered), by node id, for nodes that have tasks.
    rendered: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class GetResult:
    """``GET /_tasks/{id}``: a running task, or a finished one with its stored outcome."""

    completed: bool
    task: TaskInfo
    error: dict[str, Any] | None = None
    response: Any = None
    has_response: bool = False

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> GetResult:
        """Parse the ``GET /_tasks/{id}`` body another node answered."""
        error = body.get("error")
        return cls(
            completed=bool(body["completed"]),
            task=TaskInfo.from_dict(body["task"]),
            error=error if isinstance(error, dict) else None,
            response=body.get("response"),
            has_response="response" in body,
        )


def _id_text(task_id: TaskId | None) -> str | None:
    return None if task_id is None else str(task_id)


def _id_of(raw: Any) -> TaskId | None:
    return None if raw is None else TaskId.parse(str(raw))


def _optional_int(raw: Any) -> int | None:
    return None if raw is None else int(raw)
