"""Credentials and TLS settings of :mod:`taskwarden.client`, taken as the official
``elasticsearch`` client takes them (``api_key``, ``basic_auth``, ``ca_certs``, ``verify_certs``)."""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from taskwarden.errors import ResourceNotFoundError

__all__ = [
    "ApiKey",
    "BasicAuth",
    "authorization_of",
    "connection_settings",
    "raise_if_not_found",
    "tls_verification",
    "user_path",
]

ApiKey = str | tuple[str, str]
"""The ``encoded`` value of a created key, or its ``(id, api_key)`` pair."""
BasicAuth = tuple[str, str]
"""``(username, password)``."""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def authorization_of(api_key: ApiKey | None, basic_auth: BasicAuth | None) -> str | None:
    """The ``Authorization`` header value for the given credentials (at most one kind)."""
    if api_key is not None and basic_auth is not None:
        raise ValueError("give either api_key or basic_auth, not both")
    if api_key is not None:
        if isinstance(api_key, tuple):
            if len(api_key) != 2 or not all(isinstance(part, str) and part for part in api_key):
                raise ValueError("api_key must be the encoded key or an (id, api_key) tuple")
            return f"ApiKey {_b64(f'{api_key[0]}:{api_key[1]}')}"
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be the encoded key or an (id, api_key) tuple")
        return f"ApiKey {api_key}"
    if basic_auth is not None:
        if (not isinstance(basic_auth, tuple) or len(basic_auth) != 2
                or not all(isinstance(part, str) for part in basic_auth)):
            raise ValueError("basic_auth must be a (username, password) tuple")
        return f"Basic {_b64(f'{basic_auth[0]}:{basic_auth[1]}')}"
    return None


def tls_verification(
    url: str, ca_certs: str | os.PathLike[str] | None, verify_certs: bool
) -> ssl.SSLContext | bool:
    """What httpx checks the certificate of the server at ``url`` with: ``ca_certs`` alone when
    given, else the system's trusted CAs; nothing with ``verify_certs=False``."""
    if not verify_certs:
        if ca_certs is not None:
            raise ValueError("ca_certs cannot be used with verify_certs=False")
        return False
    if not url.lower().startswith("https:"):
        # Requests go to paths under a plain-HTTP base URL: loading CAs (~0.15 s) would be wasted.
        return False
    return ssl.create_default_context(cafile=os.fspath(ca_certs) if ca_certs is not None else None)


def connection_settings(
    url: str, *, headers: Mapping[str, str] | None, api_key: ApiKey | None,
    basic_auth: BasicAuth | None, ca_certs: str | os.PathLike[str] | None, verify_certs: bool,
) -> dict[str, Any]:
    """The ``headers`` and ``verify`` arguments of the httpx client for ``url``."""
    merged = dict(headers or {})
    authorization = authorization_of(api_key, basic_auth)
    if authorization is not None:
        if any(name.lower() == "authorization" for name in merged):
            raise ValueError("credentials given both as an Authorization header and as arguments")
        merged["Authorization"] = authorization
    return {"headers": merged, "verify": tls_verification(url, ca_certs, verify_certs)}


def user_path(username: str | None = None) -> str:
    return "/_security/user" if username is None else f"/_security/user/{quote(username, safe='')}"


def raise_if_not_found(response: httpx.Response, what: str) -> None:
    """The user endpoints answer an unknown name with a bare 404 (``{}`` or ``{"found": false}``);
    this makes it the error the other endpoints give."""
    if response.status_code != 404:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and "error" in body):
        raise ResourceNotFoundError(f"{what} not found")
