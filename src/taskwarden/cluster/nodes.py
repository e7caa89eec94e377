"""NodeInfo and Elasticsearch's ``nodes`` selector grammar (ids, names, ``_local``, ``attr:value``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from taskwarden.tasks import simple_match

__all__ = ["BUILTIN_ROLES", "NodeInfo", "resolve_nodes"]

BUILTIN_ROLES = ("master", "data", "ingest", "remote_cluster_client", "task")


@dataclass(frozen=True)
class NodeInfo:
    """What the cluster knows about one node."""

    node_id: str
    name: str
    host: str
    port: int
    version: str
    roles: tuple[str, ...] = ("task",)
    attributes: dict[str, str] = field(default_factory=dict)
    started_millis: int = 0

    @property
    def http_address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def transport_address(self) -> str:
        # Nodes talk to each other over HTTP, so the transport address is the HTTP one.
        return self.http_address

    def hot_threads_header(self) -> str:
        """``{name}{id}{ephemeral id}{host}{address}{transport address}{roles}{version}{attrs}``."""
        roles = "".join(sorted(role[:1] for role in self.roles if role))
        attributes = ", ".join(f"{k}={v}" for k, v in sorted(self.attributes.items()))
        return (
            f"{{{self.name}}}{{{self.node_id}}}{{{self.node_id}}}{{{self.host}}}{{{self.host}}}"
            f"{{{self.transport_address}}}{{{roles}}}{{{self.version}}}{{{attributes}}}"
        )

    def list_header(self) -> dict[str, Any]:
        """The per-node object in ``group_by=nodes`` responses (before its ``tasks``)."""
        out: dict[str, Any] = {
            "name": self.name,
            "transport_address": self.transport_address,
            "host": self.host,
            "ip": self.transport_address,
            "roles": sorted(self.roles),
        }
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        return out


def _parse_bool(text: str) -> bool | None:
    return {"true": True, "false": False}.get(text)


def resolve_nodes(
    selectors: Sequence[str], nodes: Sequence[NodeInfo], local_id: str
) -> list[NodeInfo]:
    """Apply selectors left to right, as Elasticsearch's DiscoveryNodes.resolveNodes does.

    An empty list selects every node; terms that match nothing are ignored. ``_master``
    selects the longest-running node, since taskwarden has no elected master.
    """
    if not selectors:
        return list(nodes)
    by_id = {n.node_id: n for n in nodes}
    chosen: dict[str, NodeInfo] = {}
    for term in selectors:
        if term == "_local":
            if local_id in by_id:
                chosen[local_id] = by_id[local_id]
        elif term == "_all":
            chosen.update(by_id)
        elif term == "_master":
            if nodes:
                oldest = min(nodes, key=lambda n: (n.started_millis, n.node_id))
                chosen[oldest.node_id] = oldest
        elif term in by_id:
            chosen[term] = by_id[term]
        elif ":" in term:
            key, _, value = term.partition(":")
            flag = _parse_bool(value)
            if key in BUILTIN_ROLES and flag is not None:
                for n in nodes:
                    if key in n.roles:
                        if flag:
                            chosen[n.node_id] = n
                        else:
                            chosen.pop(n.node_id, None)
            else:
                for n in nodes:
                    if any(
                        simple_match(key, k) and simple_match(value, v)
                        for k, v in n.attributes.items()
                    ):
                        chosen[n.node_id] = n
        else:
            for n in nodes:
                if simple_match(term, n.name) or simple_match(term, n.host):
                    chosen[n.node_id] = n
    return [n for n in nodes if n.node_id in chosen]
