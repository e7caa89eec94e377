"""TaskManager: the node's registry of running tasks, its bans, and waiting for tasks to end.

All mutation happens on the node's event loop; worker threads only read task flags.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable, Iterator

from taskwarden.errors import TaskCancelledError
from taskwarden.tasks.clock import SYSTEM_CLOCK, Clock
from taskwarden.tasks.filters import TaskFilter
from taskwarden.tasks.ids import EMPTY_TASK_ID, TaskId
from taskwarden.tasks.task import CancellableTask, CancelReason, Task

__all__ = ["TaskManager"]

UnregisterListener = Callable[[Task], None]
CancelListener = Callable[[CancellableTask, CancelReason], None]
# TaskId's generated __new__ costs a Python call; registration is hot enough to skip it.
_new_task_id = tuple.__new__


class TaskManager:
    """Registers and unregisters tasks, keeps bans keyed by parent id, resolves waiters."""

    def __init__(self, node_id: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.node_id = node_id
        self.clock = clock
        self._seq = itertools.count(1)
        self._tasks: dict[int, Task] = {}
        self._children: dict[TaskId, dict[int, Task]] = {}
        self._bans: dict[TaskId, CancelReason] = {}
        self._waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._unregister_listeners: list[UnregisterListener] = []
        self._cancel_listeners: list[CancelListener] = []

    def number_after(self, last: int) -> None:
        """Number new tasks after ``last``, which an earlier life of this node already used."""
        self._seq = itertools.count(max(last, 0) + 1)

    # registration -----------------------------------------------------------------------

    def register(
        self,
        type: str,
        action: str,
        *,
        parent_id: TaskId = EMPTY_TASK_ID,
        headers: dict[str, str] | None = None,
        description: str = "",
        cancellable: bool = True,
    ) -> Task:
        """Register a new task; a cancellable child of a banned parent is refused at once."""
        has_parent = parent_id is not EMPTY_TASK_ID and parent_id.is_set
        if cancellable and has_parent:
            ban = self._bans.get(parent_id)
            if ban is not None:
                raise TaskCancelledError(f"task cancelled before starting [{ban}]")
        task_id = _new_task_id(TaskId, (self.node_id, next(self._seq)))
        cls = CancellableTask if cancellable else Task
        task = cls(task_id, type, action, self.clock, parent_id, headers, description)
        self._tasks[task_id.id] = task
        if has_parent:
            siblings = self._children.get(parent_id)
            if siblings is None:
                siblings = self._children[parent_id] = {}
            siblings[task_id.id] = task
        return task

    def unregister(self, task: Task) -> None:
        """Remove a finished task and wake everything waiting on it; idempotent."""
        if self._tasks.pop(task.id.id, None) is None:
            return
        if task.parent_id is not EMPTY_TASK_ID and task.parent_id.is_set:
            siblings = self._children.get(task.parent_id)
            if siblings is not None:
                siblings.pop(task.id.id, None)
                if not siblings:
                    del self._children[task.parent_id]
        waiters = self._waiters.pop(task.id.id, None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        for listener in self._unregister_listeners:
            listener(task)

    def add_unregister_listener(self, listener: UnregisterListener) -> None:
        self._unregister_listeners.append(listener)

    def mark_cancelled(self, task: CancellableTask, reason: CancelReason) -> bool:
        """Mark ``task`` cancelled and tell its listeners, then the manager's; False when it
        already was. One listener here costs nothing per task, unlike one on each task."""
        if not task.mark_cancelled(reason):
            return False
        for listener in self._cancel_listeners:
            listener(task, reason)
        return True

    def add_cancel_listener(self, listener: CancelListener) -> None:
        """Call ``listener`` with every task this manager marks cancelled, as it is marked."""
        self._cancel_listeners.append(listener)

    # lookup ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks.values()))

    def get(self, task_id: TaskId | int) -> Task | None:
        if isinstance(task_id, TaskId):
            if task_id.node_id != self.node_id:
                return None
            return self._tasks.get(task_id.id)
        return self._tasks.get(task_id)

    def child_count(self, parent_id: TaskId) -> int:
        """How many children of ``parent_id`` are registered here."""
        siblings = self._children.get(parent_id)
        return 0 if siblings is None else len(siblings)

    def children_of(self, parent_id: TaskId) -> list[Task]:
        return list(self._children.get(parent_id, {}).values())

    def descendants_of(self, parent_id: TaskId) -> list[Task]:
        """Every local task below ``parent_id``, parents before children."""
        found: list[Task] = []
        stack = [parent_id]
        while stack:
            for child in self._children.get(stack.pop(), {}).values():
                found.append(child)
                stack.append(child.id)
        return found

    def matching(self, task_filter: TaskFilter) -> list[Task]:
        if task_filter.task_id is not None:
            task = self.get(task_filter.task_id)
            candidates: Iterable[Task] = () if task is None else (task,)
        elif task_filter.parent_id is not None:
            candidates = self.children_of(task_filter.parent_id)
        else:
            candidates = self._tasks.values()
        return [t for t in candidates if task_filter.matches(t)]

    # bans ------------------------------------------------------------------------------

    def ban_parent(self, parent_id: TaskId, reason: CancelReason) -> list[CancellableTask]:
        """Refuse future children of ``parent_id``; returns its running cancellable children."""
        self._bans.setdefault(parent_id, reason)
        return [t for t in self.children_of(parent_id) if isinstance(t, CancellableTask)]

    def remove_ban(self, parent_id: TaskId) -> None:
        self._bans.pop(parent_id, None)

    def ban_reason(self, parent_id: TaskId) -> CancelReason | None:
        return self._bans.get(parent_id)

    def bans(self) -> dict[TaskId, CancelReason]:
        return dict(self._bans)

    # waiting ---------------------------------------------------------------------------

    def removal(self, task: Task) -> asyncio.Future[None]:
        """A future resolved when ``task`` unregisters (already resolved if it has)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._tasks.get(task.id.id) is not task:
            fut.set_result(None)
        else:
            self._waiters.setdefault(task.id.id, []).append(fut)
        return fut

    async def wait_for_removal(self, tasks: Iterable[Task]) -> None:
        futures = [self.removal(t) for t in tasks]
        if futures:
            await asyncio.gather(*futures)

    async def wait_for_task_and_descendants(self, task: Task) -> None:
        """Return once ``task`` and every local descendant (also ones started later) are gone."""
        while True:
            pending = [task, *self.descendants_of(task.id)]
            pending = [t for t in pending if self._tasks.get(t.id.id) is t]
            if not pending:
                return
            await self.wait_for_removal(pending)
