"""Turning response bodies and errors into the bytes and headers Elasticsearch clients expect."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import yaml
from starlette.background import BackgroundTask
from starlette.responses import Response

from taskwarden.errors import ActionFailedError, TaskwardenError, es_type_of
from taskwarden.http.filter_path import apply_filter_path

__all__ = [
    "JSON_MEDIA_TYPE",
    "YAML_MEDIA_TYPE",
    "EsResponse",
    "apply_filter_path",
    "error_body",
    "internal_error",
    "negotiate_media_type",
    "render_json",
    "to_yaml",
]

log = logging.getLogger(__name__)

JSON_MEDIA_TYPE = "application/json"
YAML_MEDIA_TYPE = "application/yaml"
_COMPATIBLE_MEDIA_TYPE = "application/vnd.elasticsearch+json;compatible-with={version}"
_COMPATIBLE_VERSIONS = frozenset({"7", "8", "9"})
_COMPATIBLE_WITH = re.compile(
    r"application/vnd\.elasticsearch\+[a-z]+\s*;(?:[^,]*;)?\s*compatible-with\s*=\s*\"?(\d+)\"?",
    re.IGNORECASE,
)
_MAX_CAUSE_DEPTH = 16
# Error types whose Elasticsearch classes extend ElasticsearchException (see _root_cause).
_ES_EXCEPTION_TYPES = frozenset({
    "exception",
    "resource_not_found_exception",
    "task_cancelled_exception",
    "timeout_exception",
    "failed_node_exception",
    "no_such_node_exception",
    "node_closed_exception",
    "parse_exception",
    "es_rejected_execution_exception",
})


def render_json(body: Any, *, pretty: bool) -> bytes:
    """Compact JSON, or 2-space indented with a trailing newline (as ES ends pretty output)."""
    if pretty:
        return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2) + b"\n"
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


def to_yaml(body: Any) -> str:
    """``format=yaml``: a YAML document starting with ``---`` like Elasticsearch's."""
    # A JSON round trip turns tuples, dataclasses and enums into what the safe dumper accepts.
    plain = orjson.loads(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS))
    text: str = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, explicit_start=True)
    return text


def error_body(
    error: TaskwardenError, *, error_trace: bool, stack_trace: str | None = None
) -> dict[str, Any]:
    """The ES error envelope; ``stack_trace`` (given, or ``error``'s own) only with error_trace."""
    root_cause = _root_cause(error).to_dict()
    root_cause.pop("caused_by", None)
    details: dict[str, Any] = {"root_cause": [root_cause]}
    details.update(error.to_dict())
    if error_trace:
        details["stack_trace"] = (
            stack_trace if stack_trace is not None
            else "".join(traceback.format_exception(error))
        )
    return {"error": details, "status": error.http_status}


def _root_cause(error: TaskwardenError) -> TaskwardenError:
    """ES's ``guessRootCauses``: descend while both error and cause are Elasticsearch exceptions.

    Java exceptions (``illegal_argument_exception``, ``number_format_exception``...) end the walk.
    """
    root = error
    while (
        root.caused_by is not None
        and root.type in _ES_EXCEPTION_TYPES
        and root.caused_by.type in _ES_EXCEPTION_TYPES
    ):
        root = root.caused_by
    return root


def internal_error(exc: BaseException) -> TaskwardenError:
    """An unexpected exception as a 500 ES error, so even a bug answers in ES's shape."""
    return _as_error(exc, _MAX_CAUSE_DEPTH)


def _as_error(exc: BaseException, depth: int) -> TaskwardenError:
    if isinstance(exc, TaskwardenError):
        return exc
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    caused_by = _as_error(cause, depth - 1) if cause is not None and depth > 0 else None
    return ActionFailedError(
        str(exc) or type(exc).__name__, es_type=es_type_of(exc), status=500, caused_by=caused_by
    )


def negotiate_media_type(accept: str | None, content_type: str | None) -> str:
    """The compatible-with media type when the client asked for one (Accept first), else JSON."""
    for header in (accept, content_type):
        if not header:
            continue
        match = _COMPATIBLE_WITH.search(header)
        if match is not None:
            version = match.group(1)
            if version in _COMPATIBLE_VERSIONS:
                return _COMPATIBLE_MEDIA_TYPE.format(version=version)
    return JSON_MEDIA_TYPE


class EsResponse(Response):
    """A JSON (or yaml/text) response with the headers Elasticsearch clients expect."""

    media_type = JSON_MEDIA_TYPE

    def __init__(
        self,
        body: Any,
        *,
        status: int = 200,
        pretty: bool = False,
        filter_path: Sequence[str] = (),
        media_type: str = JSON_MEDIA_TYPE,
        opaque_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        if filter_path:
            body = apply_filter_path(body, filter_path)
        try:
            content = _encode(body, pretty=pretty, media_type=media_type)
        except (TypeError, ValueError, yaml.YAMLError) as exc:
            log.exception("response body could not be serialised")
            error = internal_error(exc)
            status = error.http_status
            content = render_json(error_body(error, error_trace=False), pretty=pretty)
            media_type = JSON_MEDIA_TYPE
        all_headers = {"X-Elastic-Product": "Elasticsearch"}
        if opaque_id is not None:
            all_headers["X-Opaque-Id"] = opaque_id
        all_headers.update(headers or {})
        super().__init__(
            content, status_code=status, headers=all_headers, media_type=media_type,
            background=background,
        )


def _encode(body: Any, *, pretty: bool, media_type: str) -> bytes:
    if isinstance(body, bytes):
        return body
    if media_type.startswith(YAML_MEDIA_TYPE):
        return to_yaml(body).encode()
    if isinstance(body, str) and media_type.startswith("text/"):
        return body.encode()
    return render_json(body, pretty=pretty)
