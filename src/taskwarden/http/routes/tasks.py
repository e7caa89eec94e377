"""``GET /_tasks``, ``GET /_tasks/{id}``, ``POST /_tasks/_cancel`` and ``/_tasks/{id}/_cancel``."""

from __future__ import annotations

from taskwarden.cluster.requests import (
    CANCEL_ACTION,
    GET_ACTION,
    LIST_ACTION,
    CancelRequest,
    ListRequest,
)
from taskwarden.errors import ActionRequestValidationError
from taskwarden.http.context import Reply, RestContext
from taskwarden.http.shapes import GROUP_BY_CHOICES, get_body, tasks_body
from taskwarden.tasks import TaskId

__all__ = [
    "CANCEL_PARAMS",
    "GET_PARAMS",
    "LIST_PARAMS",
    "cancel_tasks",
    "get_task",
    "list_tasks",
    "parse_parent",
]

MAX_WAIT_NANOS = 24 * 3600 * 10**9

LIST_PARAMS = (
    "actions", "detailed", "group_by", "nodes", "parent_task_id", "timeout", "wait_for_completion",
)
GET_PARAMS = ("timeout", "wait_for_completion")
CANCEL_PARAMS = (
    "actions", "nodes", "parent_task_id", "wait_for_completion", "group_by", "timeout",
)


def parse_parent(raw: str | None) -> TaskId | None:
    """``parent_task_id``: ``node:id``; empty, ``unset`` and the documented ``-1`` mean no filter."""
    if raw is None or raw == "-1":
        return None
    parsed = TaskId.parse(raw)
    return parsed if parsed.is_set else None


def group_by(ctx: RestContext) -> str:
    return ctx.params.choice("group_by", "nodes", GROUP_BY_CHOICES)


def timeout(ctx: RestContext) -> int | None:
    return ctx.params.time_nanos("timeout", None, max_nanos=MAX_WAIT_NANOS)


def list_request(ctx: RestContext, *, rendered: bool = False) -> ListRequest:
    p = ctx.params
    return ListRequest(
        actions=tuple(p.list("actions")),
        parent_id=parse_parent(p.str("parent_task_id")),
        detailed=p.bool("detailed", False),
        wait_for_completion=p.bool("wait_for_completion", False),
        timeout_nanos=timeout(ctx),
        rendered=rendered,
        human=p.human,
    )


async def list_tasks(ctx: RestContext) -> Reply:
    shape = group_by(ctx)
    # The default shape is assembled from each node's own encoding of its tasks.
    request = list_request(ctx, rendered=shape == "nodes" and ctx.plain_json)
    selectors = ctx.params.list("nodes")
    async with ctx.cluster.rest_task(LIST_ACTION, ctx.headers) as task:
        result = await ctx.until_disconnect(
            task, ctx.cluster.list_tasks(request, selectors, task)
        )
    return Reply(tasks_body(result, shape, human=ctx.params.human))


async def get_task(ctx: RestContext) -> Reply:
    task_id = TaskId.parse(ctx.path_param("task_id"))
    wait = ctx.params.bool("wait_for_completion", False)
    wait_timeout = timeout(ctx)
    if not task_id.is_set:
        raise ActionRequestValidationError("task id is required")
    async with ctx.cluster.rest_task(GET_ACTION, ctx.headers) as task:
        result = await ctx.until_disconnect(
            task,
            ctx.cluster.get_task(task_id, wait_for_completion=wait, timeout_nanos=wait_timeout),
        )
    return Reply(get_body(result, human=ctx.params.human))


async def cancel_tasks(ctx: RestContext) -> Reply:
    raw_id = ctx.request.path_params.get("task_id")
    task_id = TaskId.parse(raw_id) if raw_id is not None else None
    p = ctx.params
    shape = group_by(ctx)
    selectors = p.list("nodes")
    request = CancelRequest(
        task_id=task_id if task_id is not None and task_id.is_set else None,
        actions=tuple(p.list("actions")),
        parent_id=parse_parent(p.str("parent_task_id")),
        wait_for_completion=p.bool("wait_for_completion", False),
        timeout_nanos=timeout(ctx),
    )
    if request.task_id is not None and selectors:
        raise ActionRequestValidationError("task id cannot be used together with node ids")
    async with ctx.cluster.rest_task(CANCEL_ACTION, ctx.headers, cancellable=False) as task:
        result = await ctx.cluster.cancel_tasks(request, selectors, task)
    return Reply(tasks_body(result, shape, human=p.human))
