"""Python client for a taskwarden node's REST API (sync :class:`Client`, async :class:`AsyncClient`).

Errors come back as the same :mod:`taskwarden.errors` classes the server raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from taskwarden.errors import TaskwardenError, error_from_dict

__all__ = ["DEFAULT_URL", "AsyncClient", "Client"]

DEFAULT_URL = "http://127.0.0.1:9200"


def _params(**values: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)
    return out


def _decode(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            raise error_from_dict(body["error"], response.status_code)
        raise TaskwardenError(f"HTTP {response.status_code}: {response.text[:200]}")
    return body if body is not None else response.text


def _text(response: httpx.Response) -> str:
    """The body as the server wrote it (``_cat`` text), errors raised as :func:`_decode` does."""
    if response.status_code >= 400:
        _decode(response)
    return response.text


def _cancel_path(task_id: str | None) -> str:
    return f"/_tasks/{task_id}/_cancel" if task_id else "/_tasks/_cancel"


def _nodes_path(node_id: str | None) -> str:
    return f"/_nodes/{node_id}" if node_id else "/_nodes"


def _cat_tasks_params(actions: Sequence[str] | str | None, detailed: bool | None,
                      nodes: Sequence[str] | None, parent_task_id: str | None,
                      h: Sequence[str] | str | None, s: Sequence[str] | str | None,
                      v: bool | None, format: str | None, time: str | None) -> dict[str, str]:
    return _params(actions=actions, detailed=detailed, nodes=nodes, parent_task_id=parent_task_id,
                   h=h, s=s, v=v, format=format, time=time)


class Client:
    """Blocking client: ``Client().cancel(task_id="n:1", wait_for_completion=True)``."""

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float | None = 60.0,
                 headers: dict[str, str] | None = None) -> None:
        self._http = httpx.Client(base_url=url, timeout=timeout, headers=headers)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def list_tasks(self, *, actions: Sequence[str] | str | None = None, detailed: bool | None = None,
                   group_by: str | None = None, nodes: Sequence[str] | None = None,
                   parent_task_id: str | None = None) -> Any:
        params = _params(actions=actions, detailed=detailed, group_by=group_by, nodes=nodes,
                         parent_task_id=parent_task_id)
        return _decode(self._http.get("/_tasks", params=params))

    def get_task(self, task_id: str, *, wait_for_completion: bool | None = None,
                 timeout: str | None = None) -> Any:
        params = _params(wait_for_completion=wait_for_completion, timeout=timeout)
        return _decode(self._http.get(f"/_tasks/{task_id}", params=params))

    def cancel(self, *, task_id: str | None = None, actions: Sequence[str] | str | None = None,
               nodes: Sequence[str] | None = None, parent_task_id: str | None = None,
               wait_for_completion: bool | None = None) -> Any:
        params = _params(actions=actions, nodes=nodes, parent_task_id=parent_task_id,
                         wait_for_completion=wait_for_completion)
        return _decode(self._http.post(_cancel_path(task_id), params=params))

    def run(self, action: str, params: dict[str, Any] | None = None, *,
            wait_for_completion: bool = True) -> Any:
        query = _params(wait_for_completion=wait_for_completion)
        return _decode(self._http.post(f"/_actions/{action}", params=query, json=params or {}))

    def cat_tasks(self, *, actions: Sequence[str] | str | None = None, detailed: bool | None = None,
                  nodes: Sequence[str] | None = None, parent_task_id: str | None = None,
                  h: Sequence[str] | str | None = None, s: Sequence[str] | str | None = None,
                  v: bool | None = None, format: str | None = None, time: str | None = None) -> str:
        """``GET /_cat/tasks``: the server's text as it is (a table, or JSON/YAML with ``format``)."""
        params = _cat_tasks_params(actions, detailed, nodes, parent_task_id, h, s, v, format, time)
        return _text(self._http.get("/_cat/tasks", params=params))

    def nodes(self, node_id: str | None = None) -> Any:
        """``GET /_nodes`` (or one node selector): names, addresses, roles and attributes."""
        return _decode(self._http.get(_nodes_path(node_id)))


class AsyncClient:
    """Asyncio client with the same methods as :class:`Client`."""

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float | None = 60.0,
                 headers: dict[str, str] | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=url, timeout=timeout, headers=headers)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def list_tasks(self, *, actions: Sequence[str] | str | None = None,
                         detailed: bool | None = None, group_by: str | None = None,
                         nodes: Sequence[str] | None = None,
                         parent_task_id: str | None = None) -> Any:
        params = _params(actions=actions, detailed=detailed, group_by=group_by, nodes=nodes,
                         parent_task_id=parent_task_id)
        return _decode(await self._http.get("/_tasks", params=params))

    async def get_task(self, task_id: str, *, wait_for_completion: bool | None = None,
                       timeout: str | None = None) -> Any:
        params = _params(wait_for_completion=wait_for_completion, timeout=timeout)
        return _decode(await self._http.get(f"/_tasks/{task_id}", params=params))

    async def cancel(self, *, task_id: str | None = None,
                     actions: Sequence[str] | str | None = None,
                     nodes: Sequence[str] | None = None, parent_task_id: str | None = None,
                     wait_for_completion: bool | None = None) -> Any:
        params = _params(actions=actions, nodes=nodes, parent_task_id=parent_task_id,
                         wait_for_completion=wait_for_completion)
        return _decode(await self._http.post(_cancel_path(task_id), params=params))

    async def run(self, action: str, params: dict[str, Any] | None = None, *,
                  wait_for_completion: bool = True) -> Any:
        query = _params(wait_for_completion=wait_for_completion)
        return _decode(
            await self._http.post(f"/_actions/{action}", params=query, json=params or {})
        )

    async def cat_tasks(self, *, actions: Sequence[str] | str | None = None,
                        detailed: bool | None = None, nodes: Sequence[str] | None = None,
                        parent_task_id: str | None = None, h: Sequence[str] | str | None = None,
                        s: Sequence[str] | str | None = None, v: bool | None = None,
                        format: str | None = None, time: str | None = None) -> str:
        params = _cat_tasks_params(actions, detailed, nodes, parent_task_id, h, s, v, format, time)
        return _text(await self._http.get("/_cat/tasks", params=params))

    async def nodes(self, node_id: str | None = None) -> Any:
        return _decode(await self._http.get(_nodes_path(node_id)))
