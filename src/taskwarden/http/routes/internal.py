"""Node-to-node endpoints (``/_internal/...``): only callers holding the cluster secret get in.

The check happens before the body is read, so a request without the secret never runs anything.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from taskwarden.cluster.requests import CancelRequest, ListRequest
from taskwarden.cluster.transport import SECRET_HEADER, ParentRef
from taskwarden.errors import IllegalArgumentError, SecurityError
from taskwarden.http.context import Reply, RestContext
from taskwarden.http.shapes import get_body
from taskwarden.tasks import CancelReason, CancelSource, TaskId

__all__ = [
    "PARAMS",
    "ban_on_node", "cancel_on_node", "get_on_node", "list_on_node", "run_child_on_node",
]

T = TypeVar("T")

# The transport repeats the body's wait flag in the query (see NodeTransport._call).
PARAMS = ("wait_for_completion",)


def _authenticate(ctx: RestContext) -> None:
    given = ctx.request.headers.get(SECRET_HEADER)
    if given is None:
        raise SecurityError(f"missing cluster secret for internal action [{ctx.request.url.path}]")
    if not hmac.compare_digest(given.encode(), ctx.cluster.secret.encode()):
        raise SecurityError(f"invalid cluster secret for internal action [{ctx.request.url.path}]")


async def _body(ctx: RestContext) -> dict[str, Any]:
    _authenticate(ctx)
    return await ctx.json_body()


def _parsed(parse: Callable[[Any], T], raw: Any) -> T:
    """``parse(raw)``, with a malformed value a 400 rather than a server error."""
    try:
        return parse(raw)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IllegalArgumentError(f"malformed internal request: {exc}") from None


def _parent(body: dict[str, Any]) -> ParentRef:
    if "parent" not in body:
        raise IllegalArgumentError("malformed internal request: no [parent] object")
    return _parsed(ParentRef.from_dict, body["parent"])


def _request_part(body: dict[str, Any]) -> dict[str, Any]:
    part = body.get("request")
    if not isinstance(part, dict):
        raise IllegalArgumentError("malformed internal request: no [request] object")
    return part


async def list_on_node(ctx: RestContext) -> Reply:
    body = await _body(ctx)
    request = _parsed(ListRequest.from_dict, _request_part(body))
    result = await ctx.cluster.serve_node_request(
        _parent(body), lambda: ctx.cluster.local.list_tasks(request)
    )
    return Reply(result.to_dict())


async def cancel_on_node(ctx: RestContext) -> Reply:
    body = await _body(ctx)
    request = _parsed(CancelRequest.from_dict, _request_part(body))
    result = await ctx.cluster.serve_node_request(
        _parent(body), lambda: ctx.cluster.local.cancel_tasks(request)
    )
    return Reply(result.to_dict())


async def get_on_node(ctx: RestContext) -> Reply:
    body = await _body(ctx)
    timeout = body.get("timeout_nanos")
    result = await ctx.cluster.local.get_task(
        TaskId.parse(str(body.get("task_id", ""))),
        wait_for_completion=bool(body.get("wait_for_completion", False)),
        timeout_nanos=None if timeout is None else _parsed(int, timeout),
    )
    return Reply(get_body(result, human=False))


async def ban_on_node(ctx: RestContext) -> Reply:
    """Set (cancelling the parent's children here) or remove a ban on a parent task id."""
    body = await _body(ctx)
    parent_id = TaskId.parse(str(body.get("parent_task_id", "")))
    if not body.get("ban", True):
        ctx.cluster.cancellation.remove_ban(parent_id)
        return Reply({"acknowledged": True})
    try:
        source = CancelSource(str(body.get("source", CancelSource.USER.value)))
    except ValueError:
        source = CancelSource.USER
    reason = CancelReason(str(body.get("reason", "")), source)
    failures = await ctx.cluster.cancellation.ban_and_cancel_children(
        parent_id, reason, wait_for_completion=bool(body.get("wait_for_completion", False))
    )
    return Reply({"acknowledged": True, "failures": [f.to_dict() for f in failures]})


async def run_child_on_node(ctx: RestContext) -> Reply:
    """Run a child task for another node's parent; if that node goes away, the child is cancelled."""
    body = await _body(ctx)
    parent = _parent(body)
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise IllegalArgumentError("malformed internal request: [params] is not an object")
    task, outcome = ctx.cluster.start_child(parent, str(body.get("action", "")), params)
    result = await ctx.until_disconnect(task, asyncio.shield(outcome))
    if result.error is not None:
        raise result.error
    return Reply({"response": result.response})
