"""Membership: which nodes form the cluster, kept in the shared store by heartbeats.

Each node writes its own row every heartbeat and reads everyone's; a row not refreshed within
``stale_after`` is a node that is gone. There is no election: the store is the only shared truth.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from taskwarden.cluster.nodes import NodeInfo
from taskwarden.errors import TaskwardenError
from taskwarden.store import ClusterStore, NodeRecord
from taskwarden.tasks import SYSTEM_CLOCK, Clock

__all__ = ["Heartbeat", "Membership", "node_from_record", "record_of"]

log = logging.getLogger(__name__)

DEFAULT_STALE_AFTER_S = 5.0
DEFAULT_INTERVAL_S = 1.0


def record_of(node: NodeInfo, now_millis: int) -> NodeRecord:
    return NodeRecord(
        node_id=node.node_id,
        name=node.name,
        http_address=node.http_address,
        roles=tuple(node.roles),
        attributes=dict(node.attributes),
        version=node.version,
        last_seen_millis=now_millis,
        started_millis=node.started_millis,
    )


def node_from_record(record: NodeRecord) -> NodeInfo:
    host, _, port = record.http_address.rpartition(":")
    return NodeInfo(
        node_id=record.node_id,
        name=record.name,
        host=host,
        port=int(port) if port.isdigit() else 0,
        version=record.version,
        roles=tuple(record.roles),
        attributes=dict(record.attributes),
        started_millis=record.started_millis,
    )


class Membership:
    """The live nodes of the cluster, as this node last read them; always includes itself."""

    def __init__(self, local: NodeInfo, *, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> None:
        self.local = local
        self.stale_after_ms = int(stale_after_s * 1000)
        self._nodes: dict[str, NodeInfo] = {local.node_id: local}
        # Nodes the last update found started again since the one before (their new life).
        self.restarted: list[NodeInfo] = []

    def replace_local(self, local: NodeInfo) -> None:
        """Update this node's own record (for example once its port is known)."""
        self.local = local
        self._nodes[local.node_id] = local

    def update(
        self, records: list[NodeRecord], now_millis: int, *, may_declare_gone: bool = True
    ) -> list[NodeInfo]:
        """Take a fresh read of the store; returns the nodes that just went missing.

        ``may_declare_gone`` is False right after this node itself could not reach the store:
        the others could not write their heartbeats either, so stale rows prove nothing yet.
        """
        fresh = {self.local.node_id: self.local}
        for record in records:
            if record.node_id == self.local.node_id:
                continue
            if now_millis - record.last_seen_millis <= self.stale_after_ms:
                fresh[record.node_id] = node_from_record(record)
            elif not may_declare_gone and record.node_id in self._nodes:
                fresh[record.node_id] = self._nodes[record.node_id]
        gone = [node for node_id, node in self._nodes.items() if node_id not in fresh]
        self.restarted = [
            node for node_id, node in fresh.items()
            if node_id in self._nodes
            and node.started_millis != self._nodes[node_id].started_millis
        ]
        self._nodes = fresh
        return gone

    def live_nodes(self) -> list[NodeInfo]:
        return list(self._nodes.values())

    def get(self, node_id: str) -> NodeInfo | None:
        return self._nodes.get(node_id)


class Heartbeat:
    """Writes this node's row and refreshes the membership view, every ``interval``."""

    def __init__(
        self,
        membership: Membership,
        store: ClusterStore,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Clock = SYSTEM_CLOCK,
        on_gone: Callable[[list[NodeInfo]], None] | None = None,
        on_restarted: Callable[[list[NodeInfo]], None] | None = None,
    ) -> None:
        self.membership = membership
        self.store = store
        self.interval_s = interval_s
        self.clock = clock
        self.on_gone = on_gone
        self.on_restarted = on_restarted
        self._task: asyncio.Task[None] | None = None
        # Since when the store has answered every heartbeat (None: the last one failed).
        self._healthy_since: int | None = None

    async def beat(self) -> None:
        """One heartbeat: write our row, read everyone's."""
        now = self.clock.epoch_millis()
        try:
            await self.store.upsert_node(record_of(self.membership.local, now))
            records = await self.store.nodes()
        except TaskwardenError:
            self._healthy_since = None
            raise
        if self._healthy_since is None:
            self._healthy_since = now
        now = self.clock.epoch_millis()
        settled = now - self._healthy_since >= self.membership.stale_after_ms
        gone = self.membership.update(records, now, may_declare_gone=settled)
        if gone and self.on_gone is not None:
            self.on_gone(gone)
        restarted = self.membership.restarted
        if restarted and self.on_restarted is not None:
            self.on_restarted(restarted)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeat")

    async def stop(self, *, leave: bool) -> None:
        """Stop beating; ``leave`` removes our row so others drop us at once (graceful stop)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if leave:
            try:
                await self.store.remove_node(self.membership.local.node_id)
            except TaskwardenError:
                log.warning("could not remove this node from the store; others will see it stale")

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except TaskwardenError as exc:
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(self.interval_s)
