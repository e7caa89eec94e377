"""Rendering: the ES error envelope, 500s for unexpected exceptions, media types, response bytes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
import yaml

from taskwarden.errors import (
    EsTimeoutError,
    IllegalArgumentError,
    NumberFormatError,
    ResourceNotFoundError,
    TaskCancelledError,
    TaskwardenError,
)
from taskwarden.http.render import (
    JSON_MEDIA_TYPE,
    YAML_MEDIA_TYPE,
    EsResponse,
    error_body,
    internal_error,
    negotiate_media_type,
    render_json,
    to_yaml,
)

COMPAT_9 = "application/vnd.elasticsearch+json;compatible-with=9"
COMPAT_8 = "application/vnd.elasticsearch+json;compatible-with=8"


# --------------------------------------------------------------------------------------------
# error_body


def test_error_envelope_shape() -> None:
    err = ResourceNotFoundError("task [n:1] isn't running and hasn't stored its results")
    body = error_body(err, error_trace=False)
    assert body == {
        "error": {
            "root_cause": [
                {"type": "resource_not_found_exception",
                 "reason": "task [n:1] isn't running and hasn't stored its results"}
            ],
            "type": "resource_not_found_exception",
            "reason": "task [n:1] isn't running and hasn't stored its results",
        },
        "status": 404,
    }
    assert list(body) == ["error", "status"]
    assert list(body["error"]) == ["root_cause", "type", "reason"]


def test_error_envelope_keeps_the_cause_out_of_root_cause() -> None:
    err = IllegalArgumentError(
        "malformed task id n:x", caused_by=NumberFormatError('For input string: "x"')
    )
    body = error_body(err, error_trace=False)
    assert body["status"] == 400
    assert body["error"]["root_cause"] == [
        {"type": "illegal_argument_exception", "reason": "malformed task id n:x"}
    ]
    assert body["error"]["caused_by"] == {
        "type": "number_format_exception", "reason": 'For input string: "x"'
    }


def test_error_metadata_is_rendered_beside_type_and_reason() -> None:
    err = TaskwardenError("boom", metadata={"node_id": "n1"})
    body = error_body(err, error_trace=False)
    assert body["error"]["node_id"] == "n1"
    assert body["error"]["root_cause"][0] == {"type": "exception", "reason": "boom", "node_id": "n1"}
    assert body["status"] == 500


@pytest.mark.parametrize(
    ("error", "status"),
    [(EsTimeoutError("timed out after [30s/30000ms]"), 429), (TaskCancelledError("task cancelled [x]"), 400)],
)
def test_status_comes_from_the_error(error: TaskwardenError, status: int) -> None:
    assert error_body(error, error_trace=False)["status"] == status


def test_stack_trace_only_with_error_trace() -> None:
    try:
        raise IllegalArgumentError("bad")
    except IllegalArgumentError as err:
        caught = err
    assert "stack_trace" not in error_body(caught, error_trace=False)["error"]
    with_trace = error_body(caught, error_trace=True)["error"]
    assert "stack_trace" in with_trace
    assert "IllegalArgumentError" in with_trace["stack_trace"]
    assert "test_stack_trace_only_with_error_trace" in with_trace["stack_trace"]
    assert "stack_trace" not in with_trace["root_cause"][0]
    given = error_body(caught, error_trace=True, stack_trace="custom trace")["error"]
    assert given["stack_trace"] == "custom trace"
    assert "stack_trace" not in error_body(caught, error_trace=False, stack_trace="x")["error"]


# --------------------------------------------------------------------------------------------
# internal_error


def test_internal_error_maps_an_arbitrary_exception_to_a_500() -> None:
    err = internal_error(ZeroDivisionError("division by zero"))
    assert err.http_status == 500
    assert err.type == "zero_division_exception"
    assert err.reason == "division by zero"
    body = error_body(err, error_trace=False)
    assert body["status"] == 500
    assert body["error"]["type"] == "zero_division_exception"
    assert body["error"]["root_cause"][0]["type"] == "zero_division_exception"


def test_internal_error_without_a_message_uses_the_class_name() -> None:
    assert internal_error(KeyboardInterrupt()).reason == "KeyboardInterrupt"
    assert internal_error(RuntimeError()).type == "runtime_exception"


def test_internal_error_keeps_the_cause_chain() -> None:
    try:
        try:
            try:
                empty: dict[str, int] = {}
                empty["missing"]
            except KeyError as inner:
                raise ValueError("bad value") from inner
        except ValueError:
            raise RuntimeError("wrapped")  # noqa: B904 - the implicit context is what we test
    except RuntimeError as exc:
        outer = exc
    err = internal_error(outer)
    assert err.to_dict() == {
        "type": "runtime_exception",
        "reason": "wrapped",
        "caused_by": {
            "type": "value_exception",
            "reason": "bad value",
            "caused_by": {"type": "key_exception", "reason": "'missing'"},
        },
    }
    assert error_body(err, error_trace=False)["status"] == 500


def test_internal_error_honours_suppressed_context() -> None:
    try:
        try:
            raise KeyError("k")
        except KeyError:
            raise ValueError("v") from None
    except ValueError as exc:
        err = internal_error(exc)
    assert err.caused_by is None


def test_internal_error_passes_taskwarden_errors_through() -> None:
    original = IllegalArgumentError("x")
    assert internal_error(original) is original
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = original
    err = internal_error(wrapped)
    assert err.http_status == 500
    assert err.caused_by is original


def test_internal_error_stops_on_cause_cycles() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    err = internal_error(first)
    depth = 0
    cause: TaskwardenError | None = err
    while cause is not None:
        depth += 1
        cause = cause.caused_by
    assert 1 < depth <= 20


# --------------------------------------------------------------------------------------------
# media types


@pytest.mark.parametrize(
    ("accept", "content_type", "expected"),
    [
        ("application/vnd.elasticsearch+json; compatible-with=9", None, COMPAT_9),
        ("application/vnd.elasticsearch+json;compatible-with=9", None, COMPAT_9),
        ("application/vnd.elasticsearch+json; compatible-with=8", None, COMPAT_8),
        ('application/vnd.elasticsearch+json; compatible-with="9"', None, COMPAT_9),
        ("APPLICATION/VND.ELASTICSEARCH+JSON; COMPATIBLE-WITH=9", None, COMPAT_9),
        ("application/vnd.elasticsearch+json; charset=utf-8; compatible-with=9", None, COMPAT_9),
        (None, "application/vnd.elasticsearch+json; compatible-with=9", COMPAT_9),
        ("application/json", "application/vnd.elasticsearch+json; compatible-with=9", COMPAT_9),
        ("application/vnd.elasticsearch+json; compatible-with=9", "application/json", COMPAT_9),
        ("application/json", None, JSON_MEDIA_TYPE),
        ("*/*", None, JSON_MEDIA_TYPE),
        (None, None, JSON_MEDIA_TYPE),
        ("", "", JSON_MEDIA_TYPE),
        ("application/vnd.elasticsearch+json; compatible-with=99", None, JSON_MEDIA_TYPE),
    ],
)
def test_negotiate_media_type(accept: str | None, content_type: str | None, expected: str) -> None:
    assert negotiate_media_type(accept, content_type) == expected


def test_the_es9_client_accept_header_gets_the_compatible_type_back() -> None:
    # The 9.x client rewrites every application/json Accept and Content-Type into this.
    from elasticsearch._sync.client._base import _COMPAT_MIMETYPE_TEMPLATE

    sent = _COMPAT_MIMETYPE_TEMPLATE % ("json",)
    assert sent == "application/vnd.elasticsearch+json; compatible-with=9"
    assert negotiate_media_type(sent, sent) == COMPAT_9


# --------------------------------------------------------------------------------------------
# EsResponse and encoders


def _headers(response: EsResponse) -> dict[str, str]:
    return {k.decode().lower(): v.decode() for k, v in response.raw_headers}


@pytest.mark.parametrize("status", [200, 400, 404, 500])
def test_es_response_always_sends_the_product_header(status: int) -> None:
    response = EsResponse({"ok": True}, status=status)
    headers = _headers(response)
    assert headers["x-elastic-product"] == "Elasticsearch"
    assert headers["content-type"] == "application/json"
    assert response.status_code == status
    assert response.body == b'{"ok":true}'


def test_es_response_media_type_opaque_id_and_extra_headers() -> None:
    response = EsResponse({"a": 1}, media_type=COMPAT_9, opaque_id="my-id", headers={"X-Extra": "1"})
    headers = _headers(response)
    assert headers["content-type"] == COMPAT_9
    assert headers["x-opaque-id"] == "my-id"
    assert headers["x-extra"] == "1"
    assert headers["x-elastic-product"] == "Elasticsearch"
    assert "x-opaque-id" not in _headers(EsResponse({}))


def test_es_response_applies_filter_path() -> None:
    response = EsResponse({"a": {"b": 1, "c": 2}, "d": 3}, filter_path=["a.b"])
    assert orjson.loads(response.body) == {"a": {"b": 1}}
    response = EsResponse({"a": 1}, filter_path=["zzz"])
    assert response.body == b"{}"


def test_pretty_adds_indentation_and_a_trailing_newline() -> None:
    compact = bytes(EsResponse({"tasks": {"n:1": {"id": 1}}}).body)
    pretty = bytes(EsResponse({"tasks": {"n:1": {"id": 1}}}, pretty=True).body)
    assert b"\n" not in compact
    assert pretty.endswith(b"}\n")
    assert pretty.startswith(b'{\n  "tasks": {\n    "n:1": {\n      "id": 1\n')
    assert orjson.loads(pretty) == orjson.loads(compact)
    assert render_json([1], pretty=False) == b"[1]"
    assert render_json([1], pretty=True) == b"[\n  1\n]\n"


def test_format_yaml_starts_with_a_document_marker() -> None:
    body = {"nodes": {"n1": {"name": "alpha", "roles": ["task"], "tasks": {}}}, "ok": True}
    response = EsResponse(body, media_type=YAML_MEDIA_TYPE)
    text = bytes(response.body).decode()
    assert text.startswith("---\n")
    assert yaml.safe_load(text) == body
    assert _headers(response)["content-type"] == YAML_MEDIA_TYPE
    assert _headers(response)["x-elastic-product"] == "Elasticsearch"
    assert list(yaml.safe_load(to_yaml({"z": 1, "a": 2}))) == ["z", "a"]  # key order kept


def test_to_yaml_accepts_what_json_would() -> None:
    text = to_yaml({"t": (1, 2), 3: "int key", "u": "é"})
    assert text.startswith("---")
    assert yaml.safe_load(text) == {"t": [1, 2], "3": "int key", "u": "é"}


def test_text_and_bytes_bodies_are_sent_as_is() -> None:
    assert EsResponse("a b\n", media_type="text/plain").body == b"a b\n"
    assert EsResponse(b"\x00raw").body == b"\x00raw"


def test_unserialisable_body_becomes_a_500_error_body(caplog: pytest.LogCaptureFixture) -> None:
    weird: dict[str, Any] = {"when": object()}
    response = EsResponse(weird, status=200, opaque_id="o")
    assert response.status_code == 500
    body = orjson.loads(response.body)
    assert body["status"] == 500
    assert body["error"]["root_cause"][0]["type"] == body["error"]["type"]
    assert "stack_trace" not in body["error"]
    headers = _headers(response)
    assert headers["content-type"] == "application/json"
    assert headers["x-elastic-product"] == "Elasticsearch"
    assert headers["x-opaque-id"] == "o"
    assert "could not be serialised" in caplog.text


def test_datetimes_and_non_string_keys_serialise() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert orjson.loads(EsResponse({1: when}).body) == {"1": "2024-01-02T03:04:05+00:00"}
