"""Bad requests over real HTTP: each gets Elasticsearch's error, and the node shrugs it off.

Every case checks the status, the ES error envelope and type, the exact reason where
Elasticsearch defines it, ``stack_trace`` only with ``error_trace=true``; then that the node
still serves and that the request left no task behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from apicheck import (
    SLEEP_PATH,
    assert_es_error,
    new_opaque,
    only_list_tasks_remain,
    tasks_with_opaque,
)
from nodeproc import NodeProcess

MAX_BODY = 1024 * 1024
BAD_BOOL = "Failed to parse value [{}] as only [true] or [false] are allowed."
NO_UNIT = "failed to parse setting [{}] with value [{}] as a time value: unit is missing or unrecognized"
GROUP_BY = "[group_by] must be one of [nodes], [parents] or [none] but was [{}]"


@dataclass(frozen=True)
class Case:
    """One bad request and the error it must get. ``{node}`` in the path is the node's id."""

    name: str
    method: str
    path: str
    status: int
    type: str
    reason: str | None = None
    reason_pattern: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    caused_by: dict[str, Any] | None = None
    root_cause: dict[str, Any] | None = None
    allow: str | None = None


def malformed(raw: str, number: str | None = None) -> Case:
    caused_by = None
    if number is not None:
        caused_by = {"type": "number_format_exception", "reason": f'For input string: "{number}"'}
    return Case(f"malformed id {raw!r}", "GET", f"/_tasks/{raw}", 400, "illegal_argument_exception",
                f"malformed task id {raw}", caused_by=caused_by)


def not_in_cluster(raw: str, node: str) -> Case:
    inner = {"type": "resource_not_found_exception",
             "reason": f"task [{raw}] isn't running and hasn't stored its results"}
    return Case(
        f"id of no known node {raw!r}", "GET", f"/_tasks/{raw}", 404, "resource_not_found_exception",
        f"task [{raw}] belongs to the node [{node}] which isn't part of the cluster and there is no "
        "record of the task",
        caused_by=inner, root_cause=inner,
    )


def unknown_param(method: str, path: str, params: dict[str, str], shown: str, suggestion: str = "") -> Case:
    reason = f"request [{path}] contains unrecognized parameter: [{shown}]"
    if suggestion:
        reason += f" -> did you mean [{suggestion}]?"
    return Case(f"unknown param {shown} on {method} {path}", method, path, 400,
                "illegal_argument_exception", reason, params=params)


def bad_bool(method: str, path: str, name: str, value: str) -> Case:
    return Case(f"bad bool {name}={value!r} on {path}", method, path, 400, "illegal_argument_exception",
                BAD_BOOL.format(value), params={name: value})


def bad_time(method: str, path: str, value: str, reason: str, cause: str | None = None) -> Case:
    caused_by = None if cause is None else {
        "type": "number_format_exception", "reason": f'For input string: "{cause}"'}
    return Case(f"bad time {value!r} on {method} {path}", method, path, 400,
                "illegal_argument_exception", reason, params={"timeout": value}, caused_by=caused_by)


def bad_body(name: str, body: dict[str, Any], reason: str) -> Case:
    return Case(name, "POST", SLEEP_PATH, 400, "illegal_argument_exception", reason, json=body)


def wrong_method(method: str, path: str, allow: str) -> Case:
    return Case(
        f"wrong method {method} {path}", method, path, 405, "method_not_allowed_exception",
        f"Incorrect HTTP method for uri [{path}] and method [{method}], allowed: [{allow}]",
        allow=allow,
    )


def no_handler(method: str, path: str) -> Case:
    return Case(f"no handler {method} {path}", method, path, 400, "illegal_argument_exception",
                f"no handler found for uri [{path}] and method [{method}]")


P = "[test:sleep] parameter"
CASES: list[Case] = [
    # malformed task ids
    malformed("abc"),
    malformed("node:", ""),
    malformed("node:x", "x"),
    malformed("a:b:c", "b:c"),
    malformed("node:1.5", "1.5"),
    malformed("node:99999999999999999999", "99999999999999999999"),
    malformed("_cancel"),
    Case("malformed id on cancel", "POST", "/_tasks/abc/_cancel", 400, "illegal_argument_exception",
         "malformed task id abc"),
    Case("malformed parent_task_id on list", "GET", "/_tasks", 400, "illegal_argument_exception",
         "malformed task id abc", params={"parent_task_id": "abc"}),
    Case("malformed parent_task_id on cancel", "POST", "/_tasks/_cancel", 400,
         "illegal_argument_exception", "malformed task id n:x", params={"parent_task_id": "n:x"},
         caused_by={"type": "number_format_exception", "reason": 'For input string: "x"'}),
    Case("malformed parent_task_id on cat", "GET", "/_cat/tasks", 400, "illegal_argument_exception",
         "malformed task id abc", params={"parent_task_id": "abc"}),
    # ES parses these as ids (empty node, negative number): they name no node of the cluster
    not_in_cluster(":1", ""),
    not_in_cluster("node:-5", "node"),
    not_in_cluster("nosuchnode:7", "nosuchnode"),
    # the unset id
    Case("unset id", "GET", "/_tasks/unset", 400, "action_request_validation_exception",
         "Validation Failed: 1: task id is required;"),
    Case("id -1 is unset", "GET", "/_tasks/node:-1", 400, "action_request_validation_exception",
         "Validation Failed: 1: task id is required;"),
    # unknown task on this node
    Case("unknown task id", "GET", "/_tasks/{node}:987654321", 404, "resource_not_found_exception",
         "task [{node}:987654321] isn't running and hasn't stored its results"),
    # unknown query parameters
    unknown_param("GET", "/_tasks", {"detaild": "true"}, "detaild", "detailed"),
    unknown_param("GET", "/_tasks/{node}:1", {"wait_for_completon": "true"}, "wait_for_completon",
                  "wait_for_completion"),
    unknown_param("POST", SLEEP_PATH, {"timeot": "1s"}, "timeot", "timeout"),
    unknown_param("POST", "/_tasks/_cancel", {"action": "test:*"}, "action", "actions"),
    unknown_param("GET", "/", {"prety": ""}, "prety", "pretty"),
    unknown_param("GET", "/_cat/tasks", {"detaild": ""}, "detaild", "detailed"),
    unknown_param("GET", "/_tasks", {"zzzzzzzz": "1"}, "zzzzzzzz"),
    Case("two unknown params", "GET", "/_tasks", 400, "illegal_argument_exception",
         "request [/_tasks] contains unrecognized parameters: [bar], [foo]",
         params={"foo": "1", "bar": "2"}),
    # booleans
    bad_bool("GET", "/_tasks", "detailed", "yes"),
    bad_bool("GET", "/_tasks", "detailed", "TRUE"),
    bad_bool("GET", "/_tasks/{node}:1", "wait_for_completion", "no"),
    bad_bool("POST", SLEEP_PATH, "wait_for_completion", "1"),
    bad_bool("POST", "/_tasks/_cancel", "wait_for_completion", "on"),
    bad_bool("GET", "/", "pretty", "yes"),
    bad_bool("GET", "/_tasks", "human", "0"),
    # time values
    bad_time("GET", "/_tasks", "5 parsecs", "failed to parse [5 parsecs]", "5 parsec"),
    bad_time("GET", "/_tasks", "abc", NO_UNIT.format("timeout", "abc")),
    bad_time("GET", "/_tasks", "10", NO_UNIT.format("timeout", "10")),
    bad_time("GET", "/_tasks", "1.5s", "failed to parse [1.5s], fractional time values are not supported",
             "1.5"),
    bad_time("GET", "/_tasks/{node}:1", "-5s",
             "failed to parse setting [timeout] with value [-5s] as a time value: negative durations "
             "are not supported"),
    bad_time("POST", SLEEP_PATH, "abc", NO_UNIT.format("timeout", "abc")),
    bad_time("POST", SLEEP_PATH, "8d", "[timeout] must be at most [7d] but was [8d]"),
    bad_time("POST", "/_tasks/_cancel", "forever", NO_UNIT.format("timeout", "forever")),
    # group_by
    Case("group_by foo", "GET", "/_tasks", 400, "illegal_argument_exception", GROUP_BY.format("foo"),
         params={"group_by": "foo"}),
    Case("group_by is case-sensitive", "GET", "/_tasks", 400, "illegal_argument_exception",
         GROUP_BY.format("NODES"), params={"group_by": "NODES"}),
    Case("group_by empty", "GET", "/_tasks", 400, "illegal_argument_exception", GROUP_BY.format(""),
         params={"group_by": ""}),
    Case("group_by on cancel", "POST", "/_tasks/_cancel", 400, "illegal_argument_exception",
         GROUP_BY.format("tree"), params={"group_by": "tree"}),
    # body: not JSON, not an object
    Case("truncated JSON", "POST", SLEEP_PATH, 400, "x_content_parse_exception",
         reason_pattern=r"\[1:\d+\] .+", content=b'{"duration":'),
    Case("not JSON", "POST", SLEEP_PATH, 400, "x_content_parse_exception",
         reason_pattern=r"\[1:1\] .+", content=b"hello"),
    Case("trailing garbage", "POST", SLEEP_PATH, 400, "x_content_parse_exception",
         reason_pattern=r"\[1:\d+\] .+", content=b'{"duration":"0s"}{'),
    Case("not UTF-8", "POST", SLEEP_PATH, 400, "x_content_parse_exception",
         reason_pattern=r"\[1:1\] .+", content=b"\xff\xfe"),
    *[
        Case(f"body is {raw.decode()}", "POST", SLEEP_PATH, 400, "parse_exception",
             "request body must be a JSON object", content=raw)
        for raw in (b"[1, 2]", b'"text"', b"42", b"null", b"true")
    ],
    # body: unknown and out-of-bounds parameters, bad types
    bad_body("unknown body param", {"duration": "0s", "bogus": 1}, "[test:sleep] unknown parameter [bogus]"),
    bad_body("unknown body param children", {"children": 2}, "[test:sleep] unknown parameter [children]"),
    bad_body("children_per_node too big", {"children_per_node": 10001},
             f"{P} [children_per_node] must be an integer between [0] and [10000] but was [10001]"),
    bad_body("children_per_node negative", {"children_per_node": -1},
             f"{P} [children_per_node] must be an integer between [0] and [10000] but was [-1]"),
    bad_body("children_per_node not int", {"children_per_node": "abc"},
             f"{P} [children_per_node] must be an integer between [0] and [10000] but was [abc]"),
    bad_body("children_per_node fraction", {"children_per_node": 1.5},
             f"{P} [children_per_node] must be an integer between [0] and [10000] but was [1.5]"),
    bad_body("children_per_node boolean", {"children_per_node": True},
             f"{P} [children_per_node] must be an integer between [0] and [10000] but was [true]"),
    bad_body("duration too long", {"duration": "25h"},
             f"{P} [duration] must be between [0s] and [24h] but was [25h]"),
    bad_body("duration -1", {"duration": "-1"},
             f"{P} [duration] must be between [0s] and [24h] but was [-1]"),
    bad_body("spawn_delay too long", {"spawn_delay": "2d"},
             f"{P} [spawn_delay] must be between [0s] and [24h] but was [2d]"),
    bad_body("stop_delay too long", {"stop_delay": "1441m"},
             f"{P} [stop_delay] must be between [0s] and [24h] but was [1441m]"),
    bad_body("grace too long", {"grace": "48h"}, f"{P} [grace] must be between [0s] and [24h] but was [48h]"),
    bad_body("duration a number", {"duration": 5},
             f'{P} [duration] must be a time value string such as "30s", but was [5]'),
    bad_body("duration null", {"duration": None},
             f'{P} [duration] must be a time value string such as "30s", but was [null]'),
    Case("duration bad unit", "POST", SLEEP_PATH, 400, "illegal_argument_exception",
         f'{P} [duration] must be a time value such as "30s" but was [5 parsecs]',
         json={"duration": "5 parsecs"},
         caused_by={"type": "illegal_argument_exception", "reason": "failed to parse [5 parsecs]",
                    "caused_by": {"type": "number_format_exception",
                                  "reason": 'For input string: "5 parsec"'}}),
    Case("grace no unit", "POST", SLEEP_PATH, 400, "illegal_argument_exception",
         f'{P} [grace] must be a time value such as "30s" but was [abc]', json={"grace": "abc"},
         caused_by={"type": "illegal_argument_exception", "reason": NO_UNIT.format("grace", "abc")}),
    bad_body("executor unknown", {"executor": "fiber"},
             f"{P} [executor] must be one of [async], [thread] or [process] but was [fiber]"),
    bad_body("cancellable a string", {"cancellable": "yes"},
             f"{P} [cancellable] must be true or false but was [yes]"),
    bad_body("busy null", {"busy": None}, f"{P} [busy] must be true or false but was [null]"),
    bad_body("ignore_cancel a number", {"ignore_cancel": 1},
             f"{P} [ignore_cancel] must be true or false but was [1]"),
    bad_body("fail a number", {"fail": 42}, f"{P} [fail] must be a string"),
    # unknown action, path, method
    Case("unknown action", "POST", "/_actions/nope:x", 404, "resource_not_found_exception",
         "action [nope:x] is not registered on this node"),
    Case("unknown action in background", "POST", "/_actions/nope:x", 404, "resource_not_found_exception",
         "action [nope:x] is not registered on this node", params={"wait_for_completion": "false"}),
    no_handler("GET", "/_nope"),
    no_handler("POST", "/_tasks/a/b/c"),
    no_handler("DELETE", "/_actions"),
    no_handler("GET", "/_cat/nothing"),
    wrong_method("GET", SLEEP_PATH, "POST"),
    wrong_method("DELETE", "/_tasks", "GET, HEAD"),
    wrong_method("POST", "/", "GET, HEAD"),
    wrong_method("PUT", "/_nodes", "GET, HEAD"),
    wrong_method("DELETE", "/_tasks/{node}:1", "GET, HEAD"),
    wrong_method("PUT", "/_tasks/_cancel", "GET, HEAD, POST"),
    # oversized body
    Case("oversized body", "POST", SLEEP_PATH, 413, "request_entity_too_large_exception",
         f"request body is larger than the limit of [{MAX_BODY}] bytes", content=b" " * (2 * MAX_BODY)),
    # cancel by id and by node at once
    Case("cancel task_id with nodes", "POST", "/_tasks/{node}:1/_cancel", 400,
         "action_request_validation_exception",
         "Validation Failed: 1: task id cannot be used together with node ids;",
         params={"nodes": "_local"}),
]


@pytest.fixture(scope="module")
def node_id(shared_node: NodeProcess) -> str:
    return shared_node.node_id


def send(node: NodeProcess, case: Case, node_id: str, params: dict[str, str],
         headers: dict[str, str]) -> httpx.Response:
    kwargs: dict[str, Any] = {"params": params, "headers": headers}
    if case.json is not None:
        kwargs["json"] = case.json
    elif case.content is not None:
        kwargs["content"] = case.content
        kwargs["headers"] = {**headers, "Content-Type": "application/json"}
    return node.client.request(case.method, case.path.format(node=node_id), **kwargs)


def assert_unharmed(node: NodeProcess, opaque: str) -> None:
    """The node still serves, and the bad request left no task of its own behind."""
    assert node.get("/").status_code == 200
    assert tasks_with_opaque(node, opaque) == []
    node.wait_until(lambda: only_list_tasks_remain(node), 30.0, "stray tasks registered")


@pytest.mark.parametrize("error_trace", [False, True], ids=["plain", "error_trace"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_request(shared_node: NodeProcess, node_id: str, case: Case, error_trace: bool) -> None:
    opaque = new_opaque("bad")
    params = dict(case.params)
    if error_trace:
        params["error_trace"] = "true"
    response = send(shared_node, case, node_id, params, {"X-Opaque-Id": opaque})
    reason = case.reason.format(node=node_id) if case.reason is not None else None
    error = assert_es_error(response, case.status, case.type, reason,
                            reason_pattern=case.reason_pattern, error_trace=error_trace)
    assert response.headers.get("x-opaque-id") == opaque
    if case.caused_by is not None:
        assert error["caused_by"] == case.caused_by
    else:
        assert "caused_by" not in error
    expected_root = case.root_cause or {"type": error["type"], "reason": error["reason"]}
    assert error["root_cause"] == [expected_root]
    if case.allow is not None:
        assert response.headers["allow"] == case.allow
    assert_unharmed(shared_node, opaque)


def test_bad_error_trace_value_is_itself_rejected(shared_node: NodeProcess) -> None:
    opaque = new_opaque("bad")
    response = shared_node.get("/_tasks/abc", params={"error_trace": "yes"}, headers={"X-Opaque-Id": opaque})
    assert_es_error(response, 400, "illegal_argument_exception", BAD_BOOL.format("yes"))
    assert_unharmed(shared_node, opaque)


@pytest.mark.parametrize("path, params", [
    ("/_tasks/abc", {"pretty": "true"}),
    ("/_tasks", {"pretty": "", "detaild": "true"}),  # the parameter check itself honours pretty
])
def test_pretty_error_is_indented(shared_node: NodeProcess, path: str, params: dict[str, str]) -> None:
    response = shared_node.get(path, params=params)
    assert_es_error(response, 400, "illegal_argument_exception")
    assert response.text.startswith('{\n  "error"') and response.text.endswith("}\n")


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        sent += part
        yield b" " * part


def test_oversized_chunked_body(shared_node: NodeProcess) -> None:
    """Without Content-Length the limit applies while reading."""
    opaque = new_opaque("bad")
    response = shared_node.post(SLEEP_PATH, content=chunks(3 * MAX_BODY),
                                headers={"X-Opaque-Id": opaque, "Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_es_error(response, 413, "request_entity_too_large_exception",
                    f"request body is larger than the limit of [{MAX_BODY}] bytes")
    assert_unharmed(shared_node, opaque)


def test_body_at_the_limit_is_accepted(shared_node: NodeProcess) -> None:
    body = b'{"duration": "0s"}'
    exact = body + b" " * (MAX_BODY - len(body))
    response = shared_node.post(SLEEP_PATH, content=exact, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    over = shared_node.post(SLEEP_PATH, content=exact + b" ", headers={"Content-Type": "application/json"})
    assert_es_error(over, 413, "request_entity_too_large_exception")


def test_oversized_task_headers(shared_node: NodeProcess) -> None:
    opaque = "x" * 9000
    for method, path in (("GET", "/_tasks"), ("POST", SLEEP_PATH)):
        response = shared_node.client.request(method, path, headers={"X-Opaque-Id": opaque})
        assert_es_error(response, 400, "illegal_argument_exception",
                        "Request exceeded the maximum size of task headers 16kb")
        assert_unharmed(shared_node, opaque)


def test_cancel_of_unknown_task_is_a_node_failure_not_an_error(
    shared_node: NodeProcess, node_id: str
) -> None:
    task_id = f"{node_id}:987654321"
    opaque = new_opaque("bad")
    response = shared_node.post(f"/_tasks/{task_id}/_cancel", headers={"X-Opaque-Id": opaque})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "node_failures": [{
            "type": "failed_node_exception", "reason": f"Failed node [{node_id}]", "node_id": node_id,
            "caused_by": {"type": "resource_not_found_exception", "reason": f"task [{task_id}] is not found"},
        }],
        "nodes": {},
    }
    assert_unharmed(shared_node, opaque)


def test_cancel_of_task_on_unknown_node_is_a_node_failure(shared_node: NodeProcess) -> None:
    response = shared_node.post("/_tasks/ghost:3/_cancel")
    assert response.status_code == 200, response.text
    [failure] = response.json()["node_failures"]
    assert failure["node_id"] == "ghost"
    assert failure["caused_by"] == {
        "type": "no_such_node_exception", "reason": "No such node [ghost]", "node_id": "ghost"}


def test_failing_action_error_carries_its_trace_only_when_asked(shared_node: NodeProcess) -> None:
    body = {"duration": "0s", "fail": "boom"}
    plain = shared_node.post(SLEEP_PATH, json=body)
    assert_es_error(plain, 500, "exception", "boom")
    traced = shared_node.post(SLEEP_PATH, json=body, params={"error_trace": "true"})
    assert_es_error(traced, 500, "exception", "boom", error_trace=True)
