"""The routes table: every REST endpoint, and ES-style answers for unknown paths and methods."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection
from typing import NamedTuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from taskwarden.cluster.service import ClusterService
from taskwarden.cluster.transport import INTERNAL_PREFIX
from taskwarden.errors import IllegalArgumentError, MethodNotAllowedError, RejectedExecutionError
from taskwarden.http.context import (
    Access,
    Handler,
    Reply,
    RestContext,
    error_response,
    es_endpoint,
)
from taskwarden.http.routes import (
    actions,
    cat,
    hot_threads,
    internal,
    metrics,
    nodes,
    security,
    tasks,
)
from taskwarden.http.routes.ui import ui_routes
from taskwarden.security import Role, SecurityService

__all__ = ["API_ROUTES", "DEFAULT_MAX_CONCURRENT_REQUESTS", "NodeApp", "RouteSpec", "build_app"]

DEFAULT_MAX_CONCURRENT_REQUESTS = 5_000

Endpoint = Callable[[Request], Awaitable[Response]]


class RouteSpec(NamedTuple):
    """One REST endpoint: its path, methods, the query parameters it takes, its handler, and
    what a caller needs when security is on (None: node-to-node, the cluster secret only)."""

    path: str
    methods: list[str]
    params: Collection[str]
    handler: Handler
    access: Access | None
    bulk: bool = False


def _monitor(action: str) -> Access:
    return Access(action, Role.MONITOR)


def _manage(action: str) -> Access:
    return Access(action, Role.MANAGE)


def _admin(action: str) -> Access:
    return Access(f"cluster:admin/xpack/security/{action}", Role.ADMIN)


_LIST_TASKS = _monitor("cluster:monitor/tasks/lists")
_CANCEL_TASKS = _manage("cluster:admin/tasks/cancel")
_NODES_INFO = _monitor("cluster:monitor/nodes/info")
_HOT_THREADS = _monitor("cluster:monitor/nodes/hot_threads")
_USER_GET = _admin("user/get")
_USER_PUT = _admin("user/put")


API_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("/", ["GET"], nodes.ROOT_PARAMS, nodes.root, _monitor("cluster:monitor/main")),
    RouteSpec("/_tasks", ["GET"], tasks.LIST_PARAMS, tasks.list_tasks, _LIST_TASKS, bulk=True),
    RouteSpec("/_tasks/_cancel", ["POST"], tasks.CANCEL_PARAMS, tasks.cancel_tasks, _CANCEL_TASKS,
              bulk=True),
    RouteSpec("/_tasks/{task_id}", ["GET"], tasks.GET_PARAMS, tasks.get_task,
              _monitor("cluster:monitor/task/get")),
    RouteSpec("/_tasks/{task_id}/_cancel", ["POST"], tasks.CANCEL_PARAMS, tasks.cancel_tasks,
              _CANCEL_TASKS, bulk=True),
    RouteSpec("/_cat/tasks", ["GET"], cat.CAT_TASKS_PARAMS, cat.cat_tasks, _LIST_TASKS, bulk=True),
    RouteSpec("/_cat/nodes", ["GET"], cat.CAT_NODES_PARAMS, cat.cat_nodes, _NODES_INFO),
    RouteSpec("/_nodes/hot_threads", ["GET"], hot_threads.HOT_THREADS_PARAMS,
              hot_threads.hot_threads, _HOT_THREADS),
    RouteSpec("/_nodes/{node_id}/hot_threads", ["GET"], hot_threads.HOT_THREADS_PARAMS,
              hot_threads.hot_threads, _HOT_THREADS),
    RouteSpec("/_nodes", ["GET"], nodes.NODES_PARAMS, nodes.nodes_info, _NODES_INFO),
    RouteSpec("/_nodes/{node_id}", ["GET"], nodes.NODES_PARAMS, nodes.nodes_info, _NODES_INFO),
    RouteSpec("/_actions/{action}", ["POST"], actions.ACTION_PARAMS, actions.run_action,
              _manage("{action}")),
    RouteSpec("/_prometheus/metrics", ["GET"], metrics.METRICS_PARAMS, metrics.prometheus_metrics,
              _monitor("cluster:monitor/prometheus/metrics")),
    RouteSpec("/_security/_authenticate", ["GET"], security.NO_PARAMS, security.authenticate,
              Access("cluster:admin/xpack/security/user/authenticate")),
    RouteSpec("/_security/api_key", ["POST", "PUT"], security.NO_PARAMS,
              security.create_api_key, _admin("api_key/create")),
    RouteSpec("/_security/api_key", ["GET"], security.API_KEY_LIST_PARAMS,
              security.list_api_keys, _admin("api_key/get")),
    RouteSpec("/_security/api_key", ["DELETE"], security.NO_PARAMS,
              security.invalidate_api_keys, _admin("api_key/invalidate")),
    RouteSpec("/_security/user", ["GET"], security.NO_PARAMS, security.get_users, _USER_GET),
    RouteSpec("/_security/user/{username}", ["GET"], security.NO_PARAMS, security.get_users,
              _USER_GET),
    RouteSpec("/_security/user/{username}", ["POST", "PUT"], security.NO_PARAMS,
              security.put_user, _USER_PUT),
    RouteSpec("/_security/user/{username}", ["DELETE"], security.NO_PARAMS,
              security.delete_user, _admin("user/delete")),
    RouteSpec(INTERNAL_PREFIX + "/tasks/list", ["POST"], internal.PARAMS, internal.list_on_node,
              None, bulk=True),
    RouteSpec(INTERNAL_PREFIX + "/tasks/cancel", ["POST"], internal.PARAMS, internal.cancel_on_node,
              None, bulk=True),
    RouteSpec(INTERNAL_PREFIX + "/tasks/get", ["POST"], internal.PARAMS, internal.get_on_node,
              None),
    RouteSpec(INTERNAL_PREFIX + "/bans", ["POST"], internal.PARAMS, internal.ban_on_node, None,
              bulk=True),
    RouteSpec(INTERNAL_PREFIX + "/nodes/stats", ["POST"], internal.PARAMS,
              internal.stats_on_node, None),
    RouteSpec(INTERNAL_PREFIX + "/nodes/hot_threads", ["POST"], internal.PARAMS,
              internal.hot_threads_on_node, None),
    RouteSpec(INTERNAL_PREFIX + "/actions/run", ["POST"], internal.PARAMS,
              internal.run_children_on_node, None),
)


def _api_routes(cluster: ClusterService, security: SecurityService | None) -> list[Route]:
    return [
        Route(
            r.path,
            es_endpoint(cluster, security, r.params, r.handler, bulk=r.bulk, access=r.access),
            methods=r.methods,
        )
        for r in API_ROUTES
    ]


def _methods_for(routes: list[Route], path: str) -> list[str]:
    methods: set[str] = set()
    for route in routes:
        if route.path_regex.match(path) and route.methods:
            methods |= route.methods
    return sorted(methods)


def _fallback(
    routes: list[Route], cluster: ClusterService, security: SecurityService | None
) -> Route:
    """Unknown path: 400 ``no handler found``; known path, wrong method: 405 with ``Allow``."""

    async def no_handler(ctx: RestContext) -> Reply:
        request = ctx.request
        path = request.url.path
        methods = _methods_for(routes, path)
        if methods:
            allowed = ", ".join(methods)
            raise MethodNotAllowedError(
                f"Incorrect HTTP method for uri [{path}] and method [{request.method}], "
                f"allowed: [{allowed}]"
            )
        raise IllegalArgumentError(
            f"no handler found for uri [{path}] and method [{request.method}]"
        )

    inner = es_endpoint(cluster, security, (), no_handler, access=Access())

    async def endpoint(request: Request) -> Response:
        response = await inner(request)
        if response.status_code == 405:
            response.headers["Allow"] = ", ".join(_methods_for(routes, request.url.path))
        return response

    return Route(
        "/{path:path}",
        endpoint,
        methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"],
    )


class NodeApp:
    """The node's ASGI app: API routes are found by a dictionary lookup (or one regex per route
    with a path parameter) and served directly; everything else goes through Starlette."""

    def __init__(
        self, app: Starlette, routes: list[Route], *,
        max_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
    ) -> None:
        self.app = app
        # Requests being served at once; node-to-node requests are not counted (refusing them
        # would turn one node's load into failures of the whole cluster).
        self.max_requests = max_requests
        self.in_flight = 0
        self._static: dict[tuple[str, str], Endpoint] = {}
        self._dynamic: dict[str, list[tuple[re.Pattern[str], Endpoint]]] = {}
        for route in routes:
            for method in route.methods or ():
                if method == "HEAD":
                    continue  # left to Starlette, which answers HEAD without a body
                if route.param_convertors:
                    self._dynamic.setdefault(method, []).append((route.path_regex, route.endpoint))
                else:
                    self._static.setdefault((method, route.path), route.endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(INTERNAL_PREFIX):
            await self._serve(scope, receive, send)
            return
        if self.in_flight >= self.max_requests:
            refused = RejectedExecutionError(
                f"rejected execution of [{scope['method']} {scope['path']}]: [{self.in_flight}] "
                f"requests in progress on this node, its limit is [{self.max_requests}]"
            )
            await error_response(refused)(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self._serve(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self._find(scope["method"], scope["path"])
            if found is not None:
                endpoint, path_params = found
                scope["app"] = self.app
                scope["path_params"] = path_params
                response = await endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _find(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        static = self._static.get((method, path))
        if static is not None:
            return static, {}
        for pattern, endpoint in self._dynamic.get(method, ()):
            match = pattern.match(path)
            if match is not None:
                return endpoint, match.groupdict()
        return None


def build_app(
    cluster: ClusterService, extra_routes: list[BaseRoute] | None = None, *,
    max_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
    security: SecurityService | None = None,
) -> NodeApp:
    """The ASGI app of one node (every request open to all without ``security``)."""
    routes = _api_routes(cluster, security)
    table: list[BaseRoute] = [
        *routes, *ui_routes(), *(extra_routes or []), _fallback(routes, cluster, security),
    ]
    app = Starlette(routes=table)
    return NodeApp(app, routes, max_requests=max_requests)

