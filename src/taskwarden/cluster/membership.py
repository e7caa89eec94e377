"""Membership: which nodes form the cluster. Today one node; the store will share it later."""

from __future__ import annotations

from taskwarden.cluster.nodes import NodeInfo

__all__ = ["Membership"]


class Membership:
    """The live nodes of the cluster, as this node sees them."""

    def __init__(self, local: NodeInfo) -> None:
        self.local = local
        self._nodes: dict[str, NodeInfo] = {local.node_id: local}

    def replace_local(self, local: NodeInfo) -> None:
        """Update this node's own record (for example once its port is known)."""
        self.local = local
        self._nodes[local.node_id] = local

    def live_nodes(self) -> list[NodeInfo]:
        return list(self._nodes.values())

    def get(self, node_id: str) -> NodeInfo | None:
        return self._nodes.get(node_id)
