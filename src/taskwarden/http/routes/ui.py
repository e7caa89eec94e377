"""``/_ui/``: the live web UI, static files shipped in the package that use only the REST API."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from taskwarden.errors import MethodNotAllowedError, ResourceNotFoundError, TaskwardenError
from taskwarden.http.render import EsResponse, error_body

__all__ = ["UI_PATH", "ui_routes"]

UI_PATH = "/_ui"


class _UiFiles(StaticFiles):
    """Static files that are always revalidated and that fail with Elasticsearch-style errors."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            return _error_response(exc, scope)
        # Revalidate on every load (answered by a cheap 304) so an upgraded node never runs old code.
        response.headers["Cache-Control"] = "no-cache"
        return response


def _error_response(exc: HTTPException, scope: Scope) -> Response:
    uri = scope.get("path", UI_PATH)
    error: TaskwardenError
    headers: dict[str, str] = {}
    if exc.status_code == 405:
        error = MethodNotAllowedError(
            f"Incorrect HTTP method for uri [{uri}] and method [{scope['method']}], "
            "allowed: [GET, HEAD]"
        )
        headers["Allow"] = "GET, HEAD"
    else:
        error = ResourceNotFoundError(f"no such file [{uri}]")
    return EsResponse(
        error_body(error, error_trace=False), status=error.http_status, headers=headers
    )


async def _to_index(request: Request) -> Response:
    query = request.url.query
    return RedirectResponse(UI_PATH + "/" + (f"?{query}" if query else ""), status_code=307)


def ui_routes() -> list[BaseRoute]:
    """The routes serving the UI: ``/_ui`` redirects to ``/_ui/``, which serves ``index.html``."""
    files = _UiFiles(packages=[("taskwarden", "ui")], html=True)
    return [
        Route(UI_PATH, _to_index, methods=["GET"]),
        Mount(UI_PATH, app=files, name="ui"),
    ]
