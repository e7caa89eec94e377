"""Node-to-node endpoints (``/_internal/...``): only callers holding the cluster secret get in.

The check happens before the body is read, so a request without the secret never runs anything.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import orjson

from taskwarden.cluster.children import ChildRun
from taskwarden.cluster.requests import CancelRequest, ListRequest
from taskwarden.cluster.stats import node_stats
from taskwarden.cluster.transport import SECRET_HEADER, ParentRef
from taskwarden.diagnostics.request import HotThreadsRequest
from taskwarden.errors import IllegalArgumentError, SecurityError
from taskwarden.http.context import Reply, RestContext
from taskwarden.http.shapes import get_body
from taskwarden.tasks import CancelReason, CancelSource, TaskId

__all__ = [
    "PARAMS",
    "ban_on_node",
    "cancel_on_node",
    "get_on_node",
    "hot_threads_on_node",
    "list_on_node",
    "run_children_on_node",
    "stats_on_node",
]

T = TypeVar("T")

# The transport repeats the body's wait flag in the query (see NodeTransport._call).
PARAMS = ("wait_for_completion",)


def _authenticate(ctx: RestContext) -> None:
    given = ctx.request_headers.get(SECRET_HEADER.lower())
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
    if request.rendered:
        result = result.render(human=request.human)
    return Reply(None, raw=result.to_wire(), content_type="application/json")


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


async def stats_on_node(ctx: RestContext) -> Reply:
    """This node's machine and process figures, for another node's ``_cat/nodes``."""
    await _body(ctx)
    return Reply(node_stats(ctx.cluster.membership.local))


async def hot_threads_on_node(ctx: RestContext) -> Reply:
    """This node's hot threads report, for another node's ``_nodes/hot_threads``."""
    request = _parsed(HotThreadsRequest.from_dict, await _body(ctx))
    return Reply({"report": await ctx.cluster.local_hot_threads(request)})


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


MAX_CHILDREN_PER_REQUEST = 10_000


def _child_specs(raw: Any) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(raw, list) or len(raw) > MAX_CHILDREN_PER_REQUEST:
        raise ValueError(
            f"[children] must be a list of at most [{MAX_CHILDREN_PER_REQUEST}] child objects"
        )
    specs = []
    for child in raw:
        params = child.get("params") or {}
        if not isinstance(child["action"], str) or not isinstance(params, dict):
            raise ValueError("a child needs an [action] string and a [params] object")
        specs.append((child["action"], params))
    return specs


async def run_children_on_node(ctx: RestContext) -> Reply:
    """Run children for another node's parent, streaming one NDJSON line as each one ends.

    If the asking node goes away (the stream closes), the children still running are cancelled.
    """
    body = await _body(ctx)
    parent = _parent(body)
    run = ctx.cluster.start_children(parent, _parsed(_child_specs, body.get("children")))
    client = ctx.request.client
    channel = f"{client.host}:{client.port}" if client else "unknown"
    gone = CancelReason(f"http channel [{channel}] closed", CancelSource.CLIENT_DISCONNECT)
    return Reply(
        None, stream=_ndjson_ends(run), content_type="application/x-ndjson",
        on_close=lambda: run.cancel_running(gone),
    )


async def _ndjson_ends(run: ChildRun) -> AsyncIterator[bytes]:
    async for group in run.ends():
        lines = bytearray()
        for index, outcome in group:
            if outcome.error is None:
                line: dict[str, Any] = {"i": index, "response": outcome.response}
            else:
                error = outcome.error
                line = {"i": index, "error": error.to_dict(), "status": error.http_status}
            lines += orjson.dumps(line, option=orjson.OPT_NON_STR_KEYS)
            lines += b"\n"
        yield bytes(lines)
