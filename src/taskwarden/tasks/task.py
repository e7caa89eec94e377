"""Task and CancellableTask: what a node knows about one unit of running work."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from typing import Any

from taskwarden.errors import TaskCancelledError
from taskwarden.tasks.clock import Clock
from taskwarden.tasks.ids import EMPTY_TASK_ID, TaskId
from taskwarden.tasks.info import TaskInfo

__all__ = ["CancelReason", "CancelSource", "CancellableTask", "Task"]

_EVENT_LOCK = threading.Lock()


class CancelSource(enum.Enum):
    """Where a cancel comes from; kept apart from how it spreads (tree, then bans)."""

    USER = "user"
    PARENT = "parent"
    SHUTDOWN = "shutdown"
    NODE_LEFT = "node_left"
    CLIENT_DISCONNECT = "client_disconnect"


class CancelReason:
    """Why a task was cancelled: the human message and its source."""

    __slots__ = ("message", "source")

    def __init__(self, message: str, source: CancelSource = CancelSource.USER) -> None:
        self.message = message
        self.source = source

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"CancelReason({self.message!r}, {self.source.name})"

    def as_parent(self) -> CancelReason:
        """The same message, marked as reaching a task through its parent."""
        return CancelReason(self.message, CancelSource.PARENT)


BY_USER_REQUEST = CancelReason("by user request", CancelSource.USER)
NODE_SHUTTING_DOWN = CancelReason("node shutting down", CancelSource.SHUTDOWN)


class Task:
    """A registered unit of work. Mutated only on the node's event loop, except ``status``."""

    # The cancellation fields live here, not on CancellableTask, so that both kinds share one
    # constructor: registering a task is the hottest path in the node.
    __slots__ = (
        "__weakref__",
        "_clock",
        "_event",
        "_listeners",
        "action",
        "cancel_reason",
        "cancelled_at_millis",
        "cancelled_at_nanos",
        "child_nodes",
        "description",
        "headers",
        "id",
        "parent_id",
        "resource_stats",
        "start_nanos",
        "start_wall_nanos",
        "status",
        "type",
    )

    cancellable = False

    def __init__(
        self,
        task_id: TaskId,
        type: str,
        action: str,
        clock: Clock,
        parent_id: TaskId = EMPTY_TASK_ID,
        headers: dict[str, str] | None = None,
        description: str = "",
    ) -> None:
        # Positional parameters: the manager calls this positionally, which costs about half
        # of a call with keywords.
        self.id = task_id
        self.type = type
        self.action = action
        self.description = description
        self.parent_id = parent_id
        self.headers: dict[str, str] = headers if headers is not None else {}
        self._clock = clock
        self.start_wall_nanos = clock.epoch_nanos()
        self.start_nanos = clock.monotonic_nanos()
        self.status: dict[str, Any] | Callable[[], dict[str, Any]] | None = None
        self.resource_stats: Callable[[], dict[str, Any] | None] | None = None
        # Nodes this task has sent (or is about to send) child requests to.
        self.child_nodes: set[str] | None = None
        self.cancel_reason: CancelReason | None = None
        self.cancelled_at_millis: int | None = None
        self.cancelled_at_nanos: int | None = None
        self._listeners: list[Callable[[CancelReason], None]] | None = None
        self._event: threading.Event | None = None

    @property
    def is_cancelled(self) -> bool:
        return False

    @property
    def start_millis(self) -> int:
        """Wall-clock start time in epoch milliseconds."""
        return self.start_wall_nanos // 1_000_000

    def add_child_node(self, node_id: str) -> None:
        """Record a node before a child request is sent there, so a ban cannot miss it."""
        if self.child_nodes is None:
            self.child_nodes = set()
        self.child_nodes.add(node_id)

    def info(self, *, detailed: bool, now_nanos: int | None = None) -> TaskInfo:
        """A snapshot in Elasticsearch's TaskInfo shape."""
        if now_nanos is None:
            now_nanos = self._clock.monotonic_nanos()
        stats = None
        if detailed and self.resource_stats is not None:
            stats = self.resource_stats()
        status = self.status if detailed else None
        if callable(status):
            status = status()
        task_id = self.id
        parent = self.parent_id
        cancellable = self.cancellable
        # Positional: listing builds one TaskInfo per task, and keywords cost a third of that.
        return TaskInfo(
            task_id.node_id,
            task_id.id,
            self.type,
            self.action,
            dict(status) if status is not None else None,
            self.description if detailed else None,
            self.start_millis,
            max(0, now_nanos - self.start_nanos),
            cancellable,
            self.cancel_reason is not None if cancellable else None,
            f"{parent.node_id}:{parent.id}" if parent.id != -1 else None,
            self.headers,
            stats,
        )

    def summary(self, now_nanos: int) -> dict[str, Any]:
        """``info(detailed=False).to_dict()``, built directly: a listing builds one per task."""
        task_id = self.id
        cancellable = self.cancellable
        out: dict[str, Any] = {
            "node": task_id.node_id,
            "id": task_id.id,
            "type": self.type,
            "action": self.action,
            "start_time_in_millis": self.start_wall_nanos // 1_000_000,
            "running_time_in_nanos": max(0, now_nanos - self.start_nanos),
            "cancellable": cancellable,
        }
        if cancellable:
            out["cancelled"] = self.cancel_reason is not None
        parent = self.parent_id
        if parent.id != -1:
            out["parent_task_id"] = f"{parent.node_id}:{parent.id}"
        out["headers"] = self.headers
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.action}>"


class CancellableTask(Task):
    """A task that can be cancelled; the first reason wins, later cancels are no-ops."""

    __slots__ = ()

    cancellable = True

    @property
    def is_cancelled(self) -> bool:
        return self.cancel_reason is not None

    def mark_cancelled(self, reason: CancelReason) -> bool:
        """Flip the flag and run listeners once; returns False when already cancelled."""
        with _EVENT_LOCK:
            if self.cancel_reason is not None:
                return False
            self.cancel_reason = reason
            self.cancelled_at_millis = self._clock.epoch_millis()
            self.cancelled_at_nanos = self._clock.monotonic_nanos()
            event = self._event
        if event is not None:
            event.set()
        listeners, self._listeners = self._listeners, None
        for listener in listeners or ():
            listener(reason)
        return True

    def add_cancel_listener(self, listener: Callable[[CancelReason], None]) -> None:
        """Call ``listener`` exactly once: now if already cancelled, else on cancellation."""
        if self.cancel_reason is not None:
            listener(self.cancel_reason)
            return
        if self._listeners is None:
            self._listeners = []
        self._listeners.append(listener)

    def remove_cancel_listener(self, listener: Callable[[CancelReason], None]) -> None:
        if self._listeners is not None and listener in self._listeners:
            self._listeners.remove(listener)

    def cancelled_error(self) -> TaskCancelledError:
        return TaskCancelledError(f"task cancelled [{self.cancel_reason}]")

    def check_cancelled(self) -> None:
        """Raise TaskCancelledError if the task was cancelled; safe from any thread."""
        if self.cancel_reason is not None:
            raise self.cancelled_error()

    def wait_cancelled(self, timeout: float | None) -> bool:
        """Block the calling thread until cancelled or ``timeout``; True when cancelled."""
        event = self._event
        if event is None:
            with _EVENT_LOCK:
                if self._event is None:
                    self._event = threading.Event()
                    if self.cancel_reason is not None:
                        self._event.set()
                event = self._event
        return event.wait(timeout)
