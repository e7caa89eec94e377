"""``GET /_cat/tasks`` and ``GET /_cat/nodes``: the same data as tables for people and scripts."""

from __future__ import annotations

from typing import Any

from taskwarden.cluster.nodes import NodeInfo
from taskwarden.cluster.requests import LIST_ACTION
from taskwarden.http.cat import (
    NODE_COLUMNS,
    CatTable,
    NodeView,
    node_rows,
    task_rows,
    task_table,
)
from taskwarden.http.context import Reply, RestContext
from taskwarden.http.render import to_yaml
from taskwarden.http.routes.nodes import COMPAT_VERSION
from taskwarden.http.routes.tasks import list_request

__all__ = ["CAT_NODES_PARAMS", "CAT_TASKS_PARAMS", "cat_nodes", "cat_tasks"]

_CAT_COMMON = ("format", "h", "help", "s", "v", "time", "bytes", "local", "master_timeout")
CAT_TASKS_PARAMS = (
    *_CAT_COMMON,
    "actions", "detailed", "nodes", "parent_task_id", "timeout", "wait_for_completion", "full_id",
)
CAT_NODES_PARAMS = (*_CAT_COMMON, "full_id", "include_unloaded_segments")

_NODES_TABLE = CatTable(NODE_COLUMNS)


def node_view(node: NodeInfo) -> NodeView:
    return NodeView(
        node_id=node.node_id,
        name=node.name,
        host=node.host,
        ip=node.host,
        port=node.port,
        version=COMPAT_VERSION,  # the "es version" column: the API level, as GET / reports
        roles=node.roles,
        attributes=dict(node.attributes),
        http_address=node.http_address,
    )


def _render(ctx: RestContext, table: CatTable, rows: list[dict[str, Any]]) -> Reply:
    p = ctx.params
    body, kind = table.render(
        rows,
        headers=p.list("h"),
        sort=p.list("s"),
        verbose=p.bool("v", False),
        help=p.bool("help", False),
        format=p.str("format") or "text",
        time_unit=p.str("time"),
    )
    if kind == "json":
        return Reply(body)
    if kind == "yaml":
        text = body if isinstance(body, str) else to_yaml(body)
        return Reply(None, text=text, content_type="application/yaml")
    assert isinstance(body, str)
    return Reply(None, text=body)


async def cat_tasks(ctx: RestContext) -> Reply:
    request = list_request(ctx)
    selectors = ctx.params.list("nodes")
    full_id = ctx.params.bool("full_id", False)
    async with ctx.cluster.rest_task(LIST_ACTION, ctx.headers) as task:
        result = await ctx.until_disconnect(
            task, ctx.cluster.list_tasks(request, selectors, task)
        )
    views = {node_id: node_view(node) for node_id, node in result.nodes.items()}
    pairs = [(info, views.get(info.node)) for info in result.tasks]
    rows = task_rows(pairs, detailed=request.detailed, full_id=full_id)
    return _render(ctx, task_table(detailed=request.detailed), rows)


async def cat_nodes(ctx: RestContext) -> Reply:
    full_id = ctx.params.bool("full_id", False)
    nodes = ctx.cluster.nodes()
    stats = await ctx.cluster.nodes_stats(nodes)
    pairs = [(node_view(n), stats.get(n.node_id, {})) for n in nodes]
    return _render(ctx, _NODES_TABLE, node_rows(pairs, full_id=full_id))
