"""Reading the ``Authorization`` header the Elasticsearch way: ``ApiKey`` and ``Basic``."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

__all__ = ["ApiKeyCredentials", "BasicCredentials", "parse_authorization"]


@dataclass(frozen=True)
class BasicCredentials:
    username: str
    password: str


@dataclass(frozen=True)
class ApiKeyCredentials:
    key_id: str
    secret: str


def parse_authorization(value: str | None) -> BasicCredentials | ApiKeyCredentials | None:
    """The credentials in ``value``; None when there are none this server reads.

    Raises ValueError (saying what is wrong) for a known scheme with a malformed value.
    """
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("basic", "apikey"):
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError(
            f"the {_label(scheme)} credentials are not base64-encoded UTF-8 text"
        ) from None
    first, sep, second = decoded.partition(":")
    if not sep or not first:
        raise ValueError(f"the {_label(scheme)} credentials are not [id:secret] encoded")
    if scheme == "basic":
        return BasicCredentials(first, second)
    return ApiKeyCredentials(first, second)


def _label(scheme: str) -> str:
    return "Basic" if scheme == "basic" else "ApiKey"
