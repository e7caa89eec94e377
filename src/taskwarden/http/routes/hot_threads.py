"""``GET /_nodes/hot_threads`` and ``GET /_nodes/{node_id}/hot_threads``: text, as in Elasticsearch."""

from __future__ import annotations

from taskwarden.diagnostics.request import HOT_THREADS_TYPES, HotThreadsRequest
from taskwarden.errors import IllegalArgumentError
from taskwarden.http.context import Reply, RestContext

__all__ = ["HOT_THREADS_PARAMS", "MAX_INTERVAL_NANOS", "hot_threads"]

HOT_THREADS_PARAMS = (
    "threads", "interval", "snapshots", "type", "sort", "ignore_idle_threads", "timeout",
)
MAX_INTERVAL_NANOS = 60 * 10**9


def hot_threads_request(ctx: RestContext) -> HotThreadsRequest:
    p = ctx.params
    kind = p.str("type", "cpu")
    if kind not in HOT_THREADS_TYPES:
        raise IllegalArgumentError(f"type not supported [{kind}]")
    if kind == "mem":
        raise IllegalArgumentError("thread allocated memory is not supported by the Python runtime")
    sort = p.str("sort", "total")
    if sort not in ("total", "cpu"):
        raise IllegalArgumentError(f"sort order not supported [{sort}]")
    interval = p.time_nanos("interval", 500_000_000, max_nanos=MAX_INTERVAL_NANOS)
    return HotThreadsRequest(
        threads=p.int("threads", 3, min_value=0, max_value=10_000),
        interval_nanos=max(0, interval or 0),
        snapshots=p.int("snapshots", 10, min_value=1, max_value=1_000),
        type=kind,
        sort=sort,
        ignore_idle_threads=p.bool("ignore_idle_threads", True),
        timeout_nanos=p.time_nanos("timeout", None, max_nanos=24 * 3600 * 10**9),
    )


async def hot_threads(ctx: RestContext) -> Reply:
    request = hot_threads_request(ctx)
    raw = ctx.request.path_params.get("node_id")
    selectors = [s for s in (raw or "").split(",") if s]
    report = await ctx.cluster.hot_threads(request, selectors)
    return Reply(None, text=report)
