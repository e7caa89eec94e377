"""The requests and results that travel between the coordinating node and the nodes it asks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from taskwarden.cluster.nodes import NodeInfo
from taskwarden.errors import FailedNodeError, TaskwardenError
from taskwarden.tasks import TaskFilter, TaskId, TaskInfo

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

    def task_filter(self) -> TaskFilter:
        return TaskFilter(actions=self.actions, parent_id=self.parent_id)


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


@dataclass
class NodeTasksResult:
    """One node's answer to a list or cancel request."""

    node_id: str
    tasks: list[TaskInfo] = field(default_factory=list)
    task_failures: list[TaskFailure] = field(default_factory=list)


@dataclass
class ClusterTasksResult:
    """The merged answer of every selected node."""

    tasks: list[TaskInfo] = field(default_factory=list)
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    node_failures: list[FailedNodeError] = field(default_factory=list)
    task_failures: list[TaskFailure] = field(default_factory=list)


@dataclass(frozen=True)
class GetResult:
    """``GET /_tasks/{id}``: a running task, or a finished one with its stored outcome."""

    completed: bool
    task: TaskInfo
    error: dict[str, Any] | None = None
    response: Any = None
    has_response: bool = False
