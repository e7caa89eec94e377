"""``GET /_prometheus/metrics``: this node's metrics in Prometheus's text format."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST

from taskwarden.errors import ResourceNotFoundError
from taskwarden.http.context import Reply, RestContext

__all__ = ["METRICS_PARAMS", "prometheus_metrics"]

METRICS_PARAMS: tuple[str, ...] = ()


async def prometheus_metrics(ctx: RestContext) -> Reply:
    metrics = ctx.cluster.metrics
    if metrics is None:
        raise ResourceNotFoundError("metrics are not collected on this node")
    return Reply(None, text=metrics.render().decode(), content_type=CONTENT_TYPE_LATEST)
