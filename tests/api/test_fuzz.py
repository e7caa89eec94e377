"""Hostile input against a live node: random parameters, values, task ids, paths and bodies on
every REST endpoint. Whatever comes in, the answer is never a 500 and never carries a stack trace;
an error is Elasticsearch's envelope with a 4xx status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nodeproc import NodeProcess

FUZZ = settings(
    database=None, max_examples=120, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Values that sit on the edges of the grammar, mixed with arbitrary text.
EDGE_VALUES = [
    "", "true", "false", "TRUE", "1", "0", "-1", "-0", "+1", "1s", "0s", "-1s", "1.5s", "1ms",
    "10nanos", "99999999999999999999d", "1e3s", "nodes", "parents", "none", "*", "_all", "_local",
    "test:*", "a,b,,c", ",", "_master", "x:y", ":", "node:1", "node:-1", "node:abc", "%", "\u00e9",
    "9223372036854775807", "-9223372036854775808", "2147483648", "null", "[]", "{}",
]
# Not ``error_trace``: it asks for the stack trace (tested on its own in test_bad_input).
PARAM_NAMES = [
    "actions", "detailed", "group_by", "nodes", "parent_task_id", "timeout",
    "wait_for_completion", "pretty", "human", "filter_path", "format", "h", "s",
    "v", "help", "bytes", "time", "threads", "interval", "snapshots", "type",
    "ignore_idle_threads", "sort", "master_timeout", "unknown", "Timeout",
]
values = st.one_of(st.sampled_from(EDGE_VALUES), st.text(max_size=30))
params = st.dictionaries(st.sampled_from(PARAM_NAMES), values, max_size=5)
task_ids = st.one_of(
    st.sampled_from(["_cancel", "x", "x:1", ":1", "node:", "-1", "a:b:c", "n:99999999999999999999"]),
    st.text(alphabet=st.characters(blacklist_characters="/?#", blacklist_categories=["Cs", "Cc"]),
            min_size=1, max_size=25),
)

# Waits are bounded: a fuzzed ``timeout`` may be a day, so every wait is given 1s instead.
BOUNDED = {"wait_for_completion", "timeout", "interval", "snapshots"}


@pytest.fixture(scope="module")
def fuzz_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("fuzz") / "node", node_name="fuzz") as node:
        yield node


def bounded(query: dict[str, str]) -> dict[str, str]:
    out = {k: v for k, v in query.items() if k not in BOUNDED}
    if "wait_for_completion" in query:
        out["wait_for_completion"] = query["wait_for_completion"]
        out["timeout"] = "1s"
    return out


def check(response: Any) -> None:
    text = response.text
    assert response.status_code < 500, (response.status_code, text[:500])
    assert "Traceback" not in text, text[:500]
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        body = json.loads(text)
        assert set(body) == {"error", "status"}, body
        assert body["status"] == response.status_code
        assert {"type", "reason"} <= set(body["error"]), body


ROUTES = [
    ("GET", "/_tasks"), ("POST", "/_tasks/_cancel"), ("GET", "/_cat/tasks"), ("GET", "/_cat/nodes"),
    ("GET", "/_nodes"), ("GET", "/"), ("GET", "/_prometheus/metrics"),
]


@FUZZ
@given(route=st.sampled_from(ROUTES), query=params)
def test_fixed_routes_never_fail_with_a_500(
    fuzz_node: NodeProcess, route: tuple[str, str], query: dict[str, str]
) -> None:
    method, path = route
    check(fuzz_node.client.request(method, path, params=bounded(query)))


@FUZZ
@given(task_id=task_ids, query=params, cancel=st.booleans())
def test_task_id_routes_never_fail_with_a_500(
    fuzz_node: NodeProcess, task_id: str, query: dict[str, str], cancel: bool
) -> None:
    path = f"/_tasks/{task_id}" + ("/_cancel" if cancel else "")
    check(fuzz_node.client.request("POST" if cancel else "GET", path, params=bounded(query)))


@FUZZ
@given(node_id=task_ids, query=params)
def test_node_routes_never_fail_with_a_500(
    fuzz_node: NodeProcess, node_id: str, query: dict[str, str]
) -> None:
    query = {k: v for k, v in query.items() if k not in BOUNDED}
    check(fuzz_node.get(f"/_nodes/{node_id}", params=query))
    check(fuzz_node.get(f"/_nodes/{node_id}/hot_threads",
                        params={**query, "interval": "1ms", "snapshots": "1"}))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | values,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=3),
    max_leaves=8,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(["duration", "children_per_node", "executor", "fail", "x"]),
                    json_values, max_size=3).map(json.dumps),
    st.text(max_size=40),
    st.sampled_from(["", "{", "[]", "null", "1", '{"duration": "0s"}', '{"duration": "-1"}']),
)


@FUZZ
@given(action=st.one_of(st.sampled_from(["test:sleep", "test:sleep[c]", "nope", "a b"]),
                        st.text(max_size=15)),
       body=bodies, query=params)
def test_action_runs_never_fail_with_a_500(
    fuzz_node: NodeProcess, action: str, body: str, query: dict[str, str]
) -> None:
    if not action.isprintable() or any(c in action for c in "/?#"):
        action = "nope"
    # A valid run is kept short: any object body sleeps 0s, with at most a few children.
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        parsed["duration"] = "0s"
        if isinstance(parsed.get("children_per_node"), int) and parsed["children_per_node"] > 3:
            parsed["children_per_node"] = 3
        body = json.dumps(parsed)
    else:
        query = {**query, "wait_for_completion": "false"}  # an empty body sleeps the default hour
    check(fuzz_node.post(f"/_actions/{action}", params=bounded(query), content=body,
                         headers={"Content-Type": "application/json"}))
    fuzz_node.post("/_tasks/_cancel", params={"actions": "test:*", "wait_for_completion": "true"})


def test_fuzz_node_is_left_with_no_tasks(fuzz_node: NodeProcess, tmp_path: Path) -> None:
    """Runs after the fuzzing: nothing it started is still registered."""
    fuzz_node.post("/_tasks/_cancel", params={"actions": "test:*", "wait_for_completion": "true"})
    fuzz_node.wait_until(lambda: fuzz_node.running() == [], message="fuzzed tasks left running")
