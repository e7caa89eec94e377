"""``GET /``, ``GET /_nodes``, ``GET /_nodes/{node_id}``: who this cluster and its nodes are."""

from __future__ import annotations

from typing import Any

from taskwarden._version import __version__
from taskwarden.cluster.nodes import NodeInfo
from taskwarden.http.context import Reply, RestContext

__all__ = ["COMPAT_VERSION", "NODES_PARAMS", "ROOT_PARAMS", "nodes_info", "root"]

# The Elasticsearch API level taskwarden answers like; clients read it from ``GET /``.
COMPAT_VERSION = "9.0.0"
ROOT_PARAMS: tuple[str, ...] = ()
NODES_PARAMS = ("timeout", "flat_settings")


def version_body() -> dict[str, Any]:
    return {
        "number": COMPAT_VERSION,
        "build_flavor": "default",
        "build_type": "taskwarden",
        "build_hash": "taskwarden-" + __version__,
        "build_snapshot": False,
        "lucene_version": "none",
        "minimum_wire_compatibility_version": "8.0.0",
        "minimum_index_compatibility_version": "8.0.0",
        "taskwarden": __version__,
    }


async def root(ctx: RestContext) -> Reply:
    local = ctx.cluster.membership.local
    return Reply(
        {
            "name": local.name,
            "cluster_name": ctx.cluster.cluster_name,
            "cluster_uuid": ctx.cluster.cluster_uuid,
            "version": version_body(),
            "tagline": "You Know, for Tasks",
        }
    )


def node_body(node: NodeInfo) -> dict[str, Any]:
    return {
        "name": node.name,
        "transport_address": node.transport_address,
        "host": node.host,
        "ip": node.host,
        "version": COMPAT_VERSION,
        "taskwarden_version": node.version,
        "build_flavor": "default",
        "build_type": "taskwarden",
        "roles": sorted(node.roles),
        "attributes": dict(node.attributes),
        "http": {"bound_address": [node.http_address], "publish_address": node.http_address},
        "start_time_in_millis": node.started_millis,
    }


async def nodes_info(ctx: RestContext) -> Reply:
    raw = ctx.request.path_params.get("node_id")
    selectors = [s for s in (raw or "").split(",") if s]
    nodes = ctx.cluster.nodes(selectors)
    return Reply(
        {
            "_nodes": {"total": len(nodes), "successful": len(nodes), "failed": 0},
            "cluster_name": ctx.cluster.cluster_name,
            "nodes": {n.node_id: node_body(n) for n in nodes},
        }
    )
