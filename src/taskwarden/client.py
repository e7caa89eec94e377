"""Python client for a taskwarden node's REST API (sync :class:`Client`, async :class:`AsyncClient`).

Errors come back as the same :mod:`taskwarden.errors` classes the server raised. Credentials and
TLS settings are the official ``elasticsearch`` client's: ``api_key`` (the ``encoded`` value or an
``(id, api_key)`` tuple) or ``basic_auth=(username, password)``; ``ca_certs`` (a CA file; default:
the system's trusted CAs) and ``verify_certs``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import httpx

from taskwarden._client_auth import (
    ApiKey,
    BasicAuth,
    connection_settings,
    raise_if_not_found,
    user_path,
)
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


def _given(**fields: Any) -> dict[str, Any]:
    """A request body of the fields that have a value."""
    return {key: value for key, value in fields.items() if value is not None}


def _user_body(password: str, roles: Sequence[str] | str) -> dict[str, Any]:
    return {"password": password, "roles": [roles] if isinstance(roles, str) else list(roles)}


def _decode_user(response: httpx.Response, username: str | None) -> Any:
    if username is not None:
        raise_if_not_found(response, f"user [{username}]")
    return _decode(response)


class Client:
    """Blocking client: ``Client().cancel(task_id="n:1", wait_for_completion=True)``."""

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float | None = 60.0,
                 headers: dict[str, str] | None = None, api_key: ApiKey | None = None,
                 basic_auth: BasicAuth | None = None, ca_certs: str | os.PathLike[str] | None = None,
                 verify_certs: bool = True) -> None:
        settings = connection_settings(url, headers=headers, api_key=api_key, basic_auth=basic_auth,
                                       ca_certs=ca_certs, verify_certs=verify_certs)
        self._http = httpx.Client(base_url=url, timeout=timeout, **settings)

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

    def authenticate(self) -> Any:
        """``GET /_security/_authenticate``: who the client is signed in as, and its role."""
        return _decode(self._http.get("/_security/_authenticate"))

    def create_api_key(self, name: str, *, role: str | None = None,
                       expiration: str | None = None) -> Any:
        """A new key (``role`` defaults to the caller's); its ``encoded`` secret is shown only here."""
        body = _given(name=name, role=role, expiration=expiration)
        return _decode(self._http.post("/_security/api_key", json=body))

    def api_keys(self, *, id: str | None = None, name: str | None = None,
                 username: str | None = None, owner: bool | None = None) -> Any:
        """``GET /_security/api_key``: the matching keys, invalidated ones included."""
        params = _params(id=id, name=name, username=username, owner=owner)
        return _decode(self._http.get("/_security/api_key", params=params))

    def invalidate_api_keys(self, *, ids: Sequence[str] | None = None, name: str | None = None,
                            username: str | None = None) -> Any:
        """Invalidate keys by id, name or owner; the answer lists those newly and already invalidated."""
        body = _given(ids=list(ids) if ids is not None else None, name=name, username=username)
        return _decode(self._http.request("DELETE", "/_security/api_key", json=body))

    def put_user(self, username: str, *, password: str, roles: Sequence[str] | str) -> Any:
        """Create or update a user (``{"created": bool}``)."""
        return _decode(self._http.put(user_path(username), json=_user_body(password, roles)))

    def users(self, username: str | None = None) -> Any:
        """Every user, or one (``ResourceNotFoundError`` when unknown), keyed by name."""
        return _decode_user(self._http.get(user_path(username)), username)

    def delete_user(self, username: str) -> Any:
        """Delete a user and invalidate its API keys (``ResourceNotFoundError`` when unknown)."""
        return _decode_user(self._http.delete(user_path(username)), username)


class AsyncClient:
    """Asyncio client with the same methods as :class:`Client`."""

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float | None = 60.0,
                 headers: dict[str, str] | None = None, api_key: ApiKey | None = None,
                 basic_auth: BasicAuth | None = None, ca_certs: str | os.PathLike[str] | None = None,
                 verify_certs: bool = True) -> None:
        settings = connection_settings(url, headers=headers, api_key=api_key, basic_auth=basic_auth,
                                       ca_certs=ca_certs, verify_certs=verify_certs)
        self._http = httpx.AsyncClient(base_url=url, timeout=timeout, **settings)

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

    async def authenticate(self) -> Any:
        return _decode(await self._http.get("/_security/_authenticate"))

    async def create_api_key(self, name: str, *, role: str | None = None,
                             expiration: str | None = None) -> Any:
        body = _given(name=name, role=role, expiration=expiration)
        return _decode(await self._http.post("/_security/api_key", json=body))

    async def api_keys(self, *, id: str | None = None, name: str | None = None,
                       username: str | None = None, owner: bool | None = None) -> Any:
        params = _params(id=id, name=name, username=username, owner=owner)
        return _decode(await self._http.get("/_security/api_key", params=params))

    async def invalidate_api_keys(self, *, ids: Sequence[str] | None = None,
                                  name: str | None = None, username: str | None = None) -> Any:
        body = _given(ids=list(ids) if ids is not None else None, name=name, username=username)
        return _decode(await self._http.request("DELETE", "/_security/api_key", json=body))

    async def put_user(self, username: str, *, password: str, roles: Sequence[str] | str) -> Any:
        return _decode(await self._http.put(user_path(username), json=_user_body(password, roles)))

    async def users(self, username: str | None = None) -> Any:
        return _decode_user(await self._http.get(user_path(username)), username)

    async def delete_user(self, username: str) -> Any:
        return _decode_user(await self._http.delete(user_path(username)), username)
