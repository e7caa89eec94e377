"""CancellationService: cancel a task and its whole tree, here and (through a port) elsewhere.

Where a cancel comes from is a :class:`CancelReason`; how it spreads is this module's job:
down the local tree first, then to every node holding children, by banning the parent id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Protocol

from taskwarden.errors import IllegalArgumentError, TaskwardenError
from taskwarden.tasks.ids import TaskId
from taskwarden.tasks.manager import TaskManager
from taskwarden.tasks.task import CancellableTask, CancelReason, Task

__all__ = ["CancellationService", "RemoteBans"]

log = logging.getLogger(__name__)


class RemoteBans(Protocol):
    """How bans reach other nodes; the cluster layer implements it, one node needs none."""

    async def ban(
        self,
        node_ids: Collection[str],
        parent_id: TaskId,
        reason: CancelReason,
        wait_for_completion: bool,
    ) -> list[TaskwardenError]: ...

    async def unban(self, node_ids: Collection[str], parent_id: TaskId) -> None: ...


class CancellationService:
    """Marks tasks cancelled, bans their children everywhere, optionally waits for the tree."""

    def __init__(self, manager: TaskManager, remote: RemoteBans | None = None) -> None:
        self.manager = manager
        self.remote = remote
        self._banned_here: set[TaskId] = set()
        self._background: set[asyncio.Task[None]] = set()
        manager.add_unregister_listener(self._on_unregister)

    async def cancel(
        self, task: Task, reason: CancelReason, *, wait_for_completion: bool = False
    ) -> list[TaskwardenError]:
        """Cancel ``task`` and its descendants; returns ban failures (data, not exceptions)."""
        if not isinstance(task, CancellableTask):
            raise IllegalArgumentError(f"task [{task.id}] doesn't support cancellation")
        remote_groups = self._cancel_local_tree(task, reason)
        failures = await self._ban_remote(remote_groups, reason, wait_for_completion)
        if wait_for_completion:
            await self.manager.wait_for_task_and_descendants(task)
        return failures

    async def ban_and_cancel_children(
        self, parent_id: TaskId, reason: CancelReason, *, wait_for_completion: bool
    ) -> list[TaskwardenError]:
        """Apply a ban sent by the parent's node: refuse new children, cancel running ones."""
        children = self.manager.ban_parent(parent_id, reason)
        groups: list[tuple[TaskId, set[str]]] = []
        for child in children:
            groups.extend(self._cancel_local_tree(child, reason.as_parent()))
        failures = await self._ban_remote(groups, reason, wait_for_completion)
        if wait_for_completion:
            await asyncio.gather(
                *(self.manager.wait_for_task_and_descendants(c) for c in children)
            )
        return failures

    def remove_ban(self, parent_id: TaskId) -> None:
        self.manager.remove_ban(parent_id)

    # internals -------------------------------------------------------------------------

    def _cancel_local_tree(
        self, root: CancellableTask, reason: CancelReason
    ) -> list[tuple[TaskId, set[str]]]:
        """Ban and mark ``root`` and its local descendants; return remote (parent, nodes) pairs."""
        remote: list[tuple[TaskId, set[str]]] = []
        stack: list[tuple[CancellableTask, CancelReason]] = [(root, reason)]
        while stack:
            task, why = stack.pop()
            # Ban first so a child registering while we cancel is refused.
            children = self.manager.ban_parent(task.id, why)
            self._banned_here.add(task.id)
            self.manager.mark_cancelled(task, why)
            if self.manager.get(task.id) is not task:
                self._release_later(task)
            others = (task.child_nodes or set()) - {self.manager.node_id}
            if others:
                remote.append((task.id, others))
            child_reason = why.as_parent()
            stack.extend((child, child_reason) for child in children)
        return remote

    async def _ban_remote(
        self,
        groups: list[tuple[TaskId, set[str]]],
        reason: CancelReason,
        wait_for_completion: bool,
    ) -> list[TaskwardenError]:
        if not groups or self.remote is None:
            return []
        remote = self.remote
        results = await asyncio.gather(
            *(remote.ban(nodes, parent, reason, wait_for_completion) for parent, nodes in groups)
        )
        return [failure for batch in results for failure in batch]

    def _on_unregister(self, task: Task) -> None:
        if task.id in self._banned_here:
            self._release_later(task)

    def _release_later(self, task: Task) -> None:
        """Drop the ban on ``task``'s children once it and its local descendants have ended."""
        if not self.manager.descendants_of(task.id) and not task.child_nodes:
            self._release(task.id, None)
            return
        job = asyncio.get_running_loop().create_task(self._release_when_done(task))
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def _release_when_done(self, task: Task) -> None:
        try:
            await self.manager.wait_for_task_and_descendants(task)
        finally:
            self._release(task.id, task.child_nodes)

    def _release(self, parent_id: TaskId, nodes: set[str] | None) -> None:
        self._banned_here.discard(parent_id)
        self.manager.remove_ban(parent_id)
        others = (nodes or set()) - {self.manager.node_id}
        if others and self.remote is not None:
            job = asyncio.get_running_loop().create_task(self.remote.unban(others, parent_id))
            self._background.add(job)
            job.add_done_callback(self._background.discard)
