"""One REST request: parameters, task headers, body, disconnect watch, ES-style replies."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from taskwarden.cluster.service import ClusterService
from taskwarden.errors import (
    AuthenticationError,
    ContentParseError,
    IllegalArgumentError,
    ParseError,
    RequestTooLargeError,
    SecurityError,
    TaskwardenError,
)
from taskwarden.http.gc_pause import CyclicGcPause
from taskwarden.http.params import RequestParams
from taskwarden.http.render import (
    JSON_MEDIA_TYPE,
    YAML_MEDIA_TYPE,
    EsResponse,
    error_body,
    internal_error,
    negotiate_media_type,
)
from taskwarden.security import Principal, Role, SecurityService, challenges_of
from taskwarden.tasks import CancelReason, CancelSource, Task

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "Access",
    "Reply",
    "RestContext",
    "error_response",
    "es_endpoint",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BODY_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024
_TASK_HEADERS = {
    "x-opaque-id": "X-Opaque-Id",
    "traceparent": "traceparent",
    "x-elastic-product-origin": "X-elastic-product-origin",
}


@dataclass
class Reply:
    """What a handler answers: a JSON body, text for ``_cat`` and hot threads, or a stream."""

    body: Any
    status: int = 200
    text: str | None = None
    content_type: str = "text/plain; charset=UTF-8"
    stream: AsyncIterator[bytes] | None = None
    # Called once a stream's response is over, finished or cut off (even before it started).
    on_close: Callable[[], None] | None = None
    raw: bytes | None = None


@dataclass(frozen=True)
class Access:
    """What a route requires when security is on: the caller's privilege for ``action``.

    ``action`` may name path parameters (``{action}``). No privilege: any signed-in caller.
    """

    action: str = ""
    privilege: Role | None = None


def header_map(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (the first of repeated ones), read in one pass."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1")
        if name not in found:
            found[name] = raw_value.decode("latin-1")
    return found


def task_headers(request_headers: dict[str, str]) -> dict[str, str]:
    """The caller's headers a task carries (and passes to its children), size-capped like ES."""
    headers: dict[str, str] = {}
    for raw_name, name in _TASK_HEADERS.items():
        value = request_headers.get(raw_name)
        if value is not None:
            headers[name] = value
    traceparent = headers.get("traceparent")
    if traceparent is not None:
        parts = traceparent.split("-")
        if len(parts) == 4 and len(parts[1]) == 32:
            headers["trace.id"] = parts[1]
    size = sum(2 * (len(k) + len(v)) for k, v in headers.items())
    if size > MAX_HEADER_BYTES:
        raise IllegalArgumentError("Request exceeded the maximum size of task headers 16kb")
    return headers


class RestContext:
    """Everything a route handler needs about its request."""

    def __init__(
        self, request: Request, params: RequestParams, headers: dict[str, str],
        cluster: ClusterService, security: SecurityService | None = None,
        request_headers: dict[str, str] | None = None,
    ) -> None:
        self.request = request
        self.params = params
        # What the task carries (``headers``) and what the request sent, by lower-case name.
        self.headers = headers
        self.request_headers = request_headers if request_headers is not None else {}
        self.cluster = cluster
        self.security = security
        self.media_type = JSON_MEDIA_TYPE
        self.principal: Principal | None = None

    @property
    def plain_json(self) -> bool:
        """Compact JSON with no ``filter_path``: pre-encoded parts may be embedded as they are."""
        return (
            self.media_type == JSON_MEDIA_TYPE and not self.params.pretty
            and not self.params.filter_path
        )

    def path_param(self, name: str) -> str:
        return str(self.request.path_params[name])

    async def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object; empty body is ``{}``."""
        length = self.request_headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise _too_large()
        chunks = bytearray()
        async for chunk in self.request.stream():
            chunks.extend(chunk)
            if len(chunks) > MAX_BODY_BYTES:
                raise _too_large()
        if not chunks.strip():
            return {}
        try:
            body = orjson.loads(bytes(chunks))
        except orjson.JSONDecodeError as exc:
            raise ContentParseError(f"[{exc.lineno}:{exc.colno}] {exc.msg}") from None
        if not isinstance(body, dict):
            raise ParseError("request body must be a JSON object")
        return body

    async def until_disconnect(self, task: Task, work: Awaitable[T]) -> T:
        """Run ``work``; if the client goes away first, cancel ``task`` (and its tree)."""
        job = asyncio.ensure_future(work)
        watcher = asyncio.ensure_future(self._disconnected())
        try:
            done, _ = await asyncio.wait({job, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if job in done:
                return job.result()
            client = self.request.client
            channel = f"{client.host}:{client.port}" if client else "unknown"
            reason = CancelReason(f"http channel [{channel}] closed", CancelSource.CLIENT_DISCONNECT)
            await self.cluster.cancel_task(task, reason)
            job.cancel()
            return await job
        finally:
            watcher.cancel()

    async def _disconnected(self) -> None:
        while True:
            message = await self.request.receive()
            if message["type"] == "http.disconnect":
                return


def _too_large() -> RequestTooLargeError:
    return RequestTooLargeError(f"request body is larger than the limit of [{MAX_BODY_BYTES}] bytes")


Handler = Callable[[RestContext], Awaitable[Reply]]


_GC_PAUSE = CyclicGcPause()


def es_endpoint(
    cluster: ClusterService,
    security: SecurityService | None,
    allowed: Collection[str],
    handler: Handler,
    *,
    bulk: bool = False,
    access: Access | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler: check the caller, parse parameters, render the reply or any error the ES
    way.

    ``bulk`` endpoints (listings, cancels) run with the cyclic collector paused until their answer
    has been sent (see CyclicGcPause). Without ``access`` (node-to-node endpoints) no user
    credentials are asked for.
    """
    allowed_set = frozenset(allowed)
    secured = security if security is not None and security.enabled else None

    async def endpoint(request: Request) -> Response:
        if not bulk:
            return await serve(request)
        held = _GC_PAUSE.hold()
        try:
            response = await serve(request)
        except BaseException:
            _GC_PAUSE.release(held)
            raise
        # The collector catches up once the answer is out (or when the pause expires). A
        # coroutine, so that the release runs on the loop: a plain function would go to a thread.
        response.background = BackgroundTask(_release_gc_pause, held)
        return response

    async def serve(request: Request) -> Response:
        scope = request.scope
        headers = header_map(scope)
        opaque_id = headers.get("x-opaque-id")
        media_type = negotiate_media_type(headers.get("accept"), headers.get("content-type"))
        query = scope["query_string"]
        items = parse_qsl(query.decode("latin-1"), keep_blank_values=True) if query else []
        # Read before the full parse, so that errors of the parse itself (an unrecognized
        # parameter) still honour them, as ES's controller does; a bad value counts as false.
        pretty = error_trace = False
        for name, value in items:
            if name == "pretty":
                pretty = value in ("", "true")
            elif name == "error_trace":
                error_trace = value in ("", "true")
        try:
            principal = None
            if access is not None:
                _refuse_cross_site(scope, headers)
                if secured is not None:
                    principal = await _caller(secured, scope, headers, access)
            params = RequestParams(scope["path"], items, allowed_set)
            pretty = params.pretty
            error_trace = params.error_trace
            if params.str("format") == "yaml":  # ES: ?format wins over Accept (_cat renders its own)
                media_type = YAML_MEDIA_TYPE
            carried = task_headers(headers)
            if principal is not None:
                carried.update(principal.task_headers())
            ctx = RestContext(request, params, carried, cluster, security, headers)
            ctx.principal = principal
            ctx.media_type = media_type
            reply = await handler(ctx)
        except TaskwardenError as exc:
            return _error(exc, media_type, pretty, error_trace, opaque_id)
        except Exception as exc:
            log.exception("unexpected failure serving %s %s", scope["method"], scope["path"])
            return _error(internal_error(exc), media_type, pretty, error_trace, opaque_id, exc)
        if reply.raw is not None:
            return Response(reply.raw, status_code=reply.status, media_type=reply.content_type)
        if reply.stream is not None:
            return _ClosingStream(reply.stream, reply.on_close, status_code=reply.status,
                                  media_type=reply.content_type)
        if reply.text is not None:
            text_headers = {"X-Elastic-Product": "Elasticsearch"}
            if opaque_id is not None:
                text_headers["X-Opaque-Id"] = opaque_id
            return Response(reply.text, status_code=reply.status, headers=text_headers,
                            media_type=reply.content_type)
        return EsResponse(
            reply.body,
            status=reply.status,
            pretty=params.pretty,
            filter_path=params.filter_path,
            media_type=media_type,
            opaque_id=opaque_id,
        )

    return endpoint


_SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


def _refuse_cross_site(scope: Scope, headers: dict[str, str]) -> None:
    """A browser's request to change something, sent by a page of another origin: refused.

    Otherwise any web page could cancel tasks through a visitor's browser (a node on localhost,
    or credentials the browser remembers). Scripts and clients send no ``Origin``.
    """
    origin = headers.get("origin")
    method = scope["method"]
    if origin is None or method in _SAFE_METHODS:
        return
    host = headers.get("host", "")
    if urlsplit(origin).netloc.lower() != host.lower():
        raise SecurityError(
            f"cross-origin request refused: [{method} {scope['path']}] from origin "
            f"[{origin}] to [{host}]"
        )


async def _caller(
    security: SecurityService, scope: Scope, headers: dict[str, str], access: Access
) -> Principal:
    """The authenticated caller, checked against ``access``."""
    uri = scope["path"]
    query = scope.get("query_string", b"")
    if query:
        uri += "?" + query.decode("latin-1")
    principal = await security.authenticate(
        headers.get("authorization"), uri,
        from_script=headers.get("x-requested-with") == "XMLHttpRequest",
    )
    if access.privilege is not None:
        action = access.action.format_map(scope["path_params"]) if "{" in access.action else (
            access.action
        )
        security.authorize(principal, action, access.privilege)
    return principal


async def _release_gc_pause(held: int) -> None:
    _GC_PAUSE.release(held)


class _ClosingStream(StreamingResponse):
    """A streamed answer that runs ``on_close`` however it ends: a client that goes away before
    the first chunk never starts the body's generator, so its own ``finally`` cannot be relied on."""

    def __init__(
        self, content: AsyncIterator[bytes], on_close: Callable[[], None] | None, *,
        status_code: int, media_type: str,
    ) -> None:
        super().__init__(content, status_code=status_code, media_type=media_type)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._on_close is not None:
                self._on_close()


def error_response(exc: TaskwardenError) -> Response:
    """An error answered before any handler ran (compact JSON, the ES error body)."""
    return _error(exc, JSON_MEDIA_TYPE, False, False, None)


def _error(
    exc: TaskwardenError,
    media_type: str,
    pretty: bool,
    error_trace: bool,
    opaque_id: str | None,
    original: BaseException | None = None,
) -> Response:
    stack = None
    if error_trace:
        stack = "".join(traceback.format_exception(original or exc))
    response = EsResponse(
        error_body(exc, error_trace=error_trace, stack_trace=stack),
        status=exc.http_status,
        pretty=pretty,
        media_type=media_type,
        opaque_id=opaque_id,
    )
    if isinstance(exc, AuthenticationError):
        for challenge in challenges_of(exc):
            response.raw_headers.append((b"www-authenticate", challenge.encode("latin-1")))
    return response
