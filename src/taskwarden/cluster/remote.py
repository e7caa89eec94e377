"""Child tasks and bans across nodes: the cluster's side of the runtime and cancellation ports."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from taskwarden.cluster.children import RemoteChildren
from taskwarden.cluster.membership import Membership
from taskwarden.cluster.transport import NodeTransport, ParentRef
from taskwarden.errors import FailedNodeError, NoSuchNodeError, TaskCancelledError, TaskwardenError
from taskwarden.runtime.handle import ChildEnd
from taskwarden.runtime.runner import ActionRunner, LocalLauncher
from taskwarden.tasks import CancellableTask, CancelReason, Task, TaskId

__all__ = ["ClusterBans", "ClusterLauncher"]


class ClusterLauncher:
    """Starts a child here, or on another node over the transport, recording the node first."""

    def __init__(
        self, runner: ActionRunner, membership: Membership, children: RemoteChildren
    ) -> None:
        self._local = LocalLauncher(runner)
        self._membership = membership
        self._children = children
        self._node_id = runner.manager.node_id

    def live_node_ids(self) -> list[str]:
        return [node.node_id for node in self._membership.live_nodes()]

    def start(
        self, parent: Task, action: str, params: dict[str, Any], *, node: str | None
    ) -> ChildEnd:
        if node is None or node == self._node_id:
            return self._local.start(parent, action, params, node=None)
        target = self._membership.get(node)
        if target is None:
            return ChildEnd.failed(
                NoSuchNodeError(f"No such node [{node}]", metadata={"node_id": node})
            )
        # Before the request leaves: a cancel that starts now must ban this node too.
        parent.add_child_node(node)
        if isinstance(parent, CancellableTask) and parent.cancel_reason is not None:
            return ChildEnd.failed(
                TaskCancelledError(f"parent task was cancelled [{parent.cancel_reason}]")
            )
        return self._children.start(target, ParentRef.of(parent), action, params)


class ClusterBans:
    """Sends bans to the nodes that hold a cancelled parent's children; failures become data."""

    def __init__(self, membership: Membership, transport: NodeTransport) -> None:
        self._membership = membership
        self._transport = transport

    async def ban(
        self,
        node_ids: Collection[str],
        parent_id: TaskId,
        reason: CancelReason,
        wait_for_completion: bool,
    ) -> list[TaskwardenError]:
        async def one(node_id: str) -> None:
            node = self._membership.get(node_id)
            if node is None:
                return  # gone: its children went with it, or are cancelled when the channel closes
            await self._transport.ban(
                node, parent_id, reason, wait_for_completion=wait_for_completion
            )

        targets = sorted(node_ids)
        outcomes = await asyncio.gather(*(one(n) for n in targets), return_exceptions=True)
        failures: list[TaskwardenError] = []
        for node_id, outcome in zip(targets, outcomes, strict=True):
            if isinstance(outcome, TaskwardenError):
                failures.append(FailedNodeError(node_id, caused_by=outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
        return failures

    async def unban(self, node_ids: Collection[str], parent_id: TaskId) -> None:
        async def one(node_id: str) -> None:
            node = self._membership.get(node_id)
            if node is not None:
                await self._transport.unban(node, parent_id)

        await asyncio.gather(*(one(n) for n in sorted(node_ids)), return_exceptions=True)
