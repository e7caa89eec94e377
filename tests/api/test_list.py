"""``GET /_tasks`` over real HTTP: filters, node selectors, the three shapes, waiting, headers, rendering."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from nodeproc import NodeProcess

# TaskInfo fields in the order Elasticsearch emits them (``children`` only in group_by=parents).
FIELD_ORDER = [
    "node", "id", "type", "action", "status", "description", "start_time", "start_time_in_millis",
    "running_time", "running_time_in_nanos", "cancellable", "cancelled", "parent_task_id", "headers",
    "resource_stats", "children",
]
NODE_HEADER_ORDER = ["name", "transport_address", "host", "ip", "roles", "attributes", "tasks"]
TIME_VALUE = re.compile(r"\d+(\.\d)?(nanos|micros|ms|s|m|h|d)")
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
LIST = "cluster:monitor/tasks/lists"


def new_opaque() -> str:
    return f"list-{uuid.uuid4().hex}"


def list_body(node: NodeProcess, headers: dict[str, str] | None = None, /, **params: str) -> dict[str, Any]:
    response = node.get("/_tasks", params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def flat(node: NodeProcess, **params: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = list_body(node, group_by="none", **params)["tasks"]
    return tasks


def with_opaque(tasks: list[dict[str, Any]], opaque: str) -> list[dict[str, Any]]:
    return [t for t in tasks if t["headers"].get("X-Opaque-Id") == opaque]


def task_ids_in_nodes(body: dict[str, Any]) -> set[str]:
    return {tid for entry in body["nodes"].values() for tid in entry["tasks"]}


def cancel_and_wait(node: NodeProcess, task_id: str) -> None:
    response = node.post(f"/_tasks/{task_id}/_cancel", params={"wait_for_completion": "true"})
    assert response.status_code == 200, response.text


def assert_field_order(task: dict[str, Any]) -> None:
    keys = list(task)
    assert set(keys) <= set(FIELD_ORDER), keys
    assert keys == sorted(keys, key=FIELD_ORDER.index), keys


@dataclass(frozen=True)
class Tree:
    """A running ``test:sleep`` parent with two children, all carrying ``opaque``."""

    parent: str
    opaque: str

    def ids(self, node: NodeProcess) -> set[str]:
        children = {t["node"] + ":" + str(t["id"]) for t in flat(node, parent_task_id=self.parent)}
        return {self.parent, *children}


@pytest.fixture
def tree(shared_node: NodeProcess) -> Iterator[Tree]:
    opaque = new_opaque()
    parent = shared_node.start_sleep({"X-Opaque-Id": opaque}, children_per_node=2)
    shared_node.wait_until(
        lambda: len(flat(shared_node, parent_task_id=parent)) == 2, message="children never started"
    )
    try:
        yield Tree(parent, opaque)
    finally:
        cancel_and_wait(shared_node, parent)


# ------------------------------------------------------------------------------------- shapes


def test_group_by_nodes_is_the_default_shape(shared_node: NodeProcess, tree: Tree) -> None:
    body = list_body(shared_node, actions="test:sleep*")
    assert list(body) == ["nodes"]
    nid = shared_node.node_id
    assert list(body["nodes"]) == [nid]
    entry = body["nodes"][nid]
    # No attributes on this node: the key is left out, as Elasticsearch does.
    assert list(entry) == ["name", "transport_address", "host", "ip", "roles", "tasks"]
    address = shared_node.url.removeprefix("http://")
    assert entry["name"] == "shared"
    assert entry["transport_address"] == address
    assert entry["ip"] == address
    assert entry["host"] == address.rsplit(":", 1)[0]
    assert entry["roles"] == sorted(entry["roles"]) and entry["roles"]
    ours = {tid: t for tid, t in entry["tasks"].items() if t["headers"].get("X-Opaque-Id") == tree.opaque}
    assert set(ours) == tree.ids(shared_node)
    for task_id, task in ours.items():
        assert task_id == f"{task['node']}:{task['id']}"
        assert task["node"] == nid
        assert_field_order(task)
        # Not detailed: neither status nor description.
        assert "status" not in task and "description" not in task
        assert task["cancellable"] is True and task["cancelled"] is False
        assert isinstance(task["start_time_in_millis"], int)
        assert isinstance(task["running_time_in_nanos"], int)
    parent = ours[tree.parent]
    assert parent["type"] == "transport" and parent["action"] == "test:sleep"
    assert "parent_task_id" not in parent
    children = [t for tid, t in ours.items() if tid != tree.parent]
    assert {c["action"] for c in children} == {"test:sleep[c]"}
    assert {c["type"] for c in children} == {"direct"}
    assert {c["parent_task_id"] for c in children} == {tree.parent}


def test_group_by_parents_nests_children(shared_node: NodeProcess, tree: Tree) -> None:
    body = list_body(shared_node, actions="test:sleep*", group_by="parents", detailed="true")
    assert list(body) == ["tasks"]
    assert isinstance(body["tasks"], dict)
    top = body["tasks"][tree.parent]
    assert list(top)[-1] == "children"
    assert_field_order(top)
    children = top["children"]
    assert len(children) == 2
    for child in children:
        assert child["parent_task_id"] == tree.parent
        assert child["action"] == "test:sleep[c]"
        assert "children" not in child
        assert_field_order(child)
        # Children are not repeated at the top level.
        assert f"{child['node']}:{child['id']}" not in body["tasks"]


def test_group_by_parents_promotes_children_whose_parent_is_filtered_out(
    shared_node: NodeProcess, tree: Tree
) -> None:
    body = list_body(shared_node, parent_task_id=tree.parent, group_by="parents")
    tasks = body["tasks"]
    assert len(tasks) == 2
    assert tree.parent not in tasks
    for task_id, task in tasks.items():
        assert task_id == f"{task['node']}:{task['id']}"
        assert task["parent_task_id"] == tree.parent
        assert "children" not in task


def test_group_by_none_is_a_flat_array(shared_node: NodeProcess, tree: Tree) -> None:
    body = list_body(shared_node, actions="test:sleep*", group_by="none")
    assert list(body) == ["tasks"]
    assert isinstance(body["tasks"], list)
    ours = with_opaque(body["tasks"], tree.opaque)
    assert {f"{t['node']}:{t['id']}" for t in ours} == tree.ids(shared_node)
    for task in ours:
        assert_field_order(task)
        assert "children" not in task


def test_group_by_rejects_other_values(shared_node: NodeProcess) -> None:
    response = shared_node.get("/_tasks", params={"group_by": "tree"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "illegal_argument_exception"
    assert error["reason"] == "[group_by] must be one of [nodes], [parents] or [none] but was [tree]"


# ------------------------------------------------------------------------------------ filters


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ("test:sleep", {"test:sleep"}),
        ("test:sleep[c]", {"test:sleep[c]"}),
        ("test:*", {"test:sleep", "test:sleep[c]"}),
        ("*[c]", {"test:sleep[c]"}),
        ("test:sleep,test:sleep[c]", {"test:sleep", "test:sleep[c]"}),
        ("nothing,test:sleep", {"test:sleep"}),
        ("TEST:*", set()),  # wildcards are case-sensitive
        ("test:slee", set()),  # no implicit prefix match
    ],
)
def test_actions_filter(shared_node: NodeProcess, tree: Tree, actions: str, expected: set[str]) -> None:
    ours = with_opaque(flat(shared_node, actions=actions), tree.opaque)
    assert {t["action"] for t in ours} == expected
    if expected == {"test:sleep"}:
        assert len(ours) == 1
    if expected == {"test:sleep[c]"}:
        assert len(ours) == 2


def test_actions_filter_matching_nothing_answers_empty_nodes(shared_node: NodeProcess) -> None:
    assert list_body(shared_node, actions="no:such:action") == {"nodes": {}}
    assert list_body(shared_node, actions="no:such:action", group_by="none") == {"tasks": []}
    assert list_body(shared_node, actions="no:such:action", group_by="parents") == {"tasks": {}}


def test_detailed_adds_status_and_description(shared_node: NodeProcess, tree: Tree) -> None:
    for flag in ("true", ""):  # ``?detailed`` alone means true
        ours = with_opaque(flat(shared_node, actions="test:sleep*", detailed=flag), tree.opaque)
        assert len(ours) == 3
        for task in ours:
            assert_field_order(task)
            assert isinstance(task["description"], str)
            assert set(task["status"]) == {"phase", "elapsed_millis", "children"}
            assert task["status"]["phase"] == "sleeping"
        parent = next(t for t in ours if "parent_task_id" not in t)
        assert parent["status"]["children"] == 2
    plain = with_opaque(flat(shared_node, actions="test:sleep*", detailed="false"), tree.opaque)
    assert all("status" not in t and "description" not in t for t in plain)


def test_parent_task_id_lists_only_the_children(shared_node: NodeProcess, tree: Tree) -> None:
    tasks = flat(shared_node, parent_task_id=tree.parent)
    assert len(tasks) == 2
    assert all(t["parent_task_id"] == tree.parent for t in tasks)
    assert tree.parent not in {f"{t['node']}:{t['id']}" for t in tasks}
    # Children of children: none.
    for task in tasks:
        assert flat(shared_node, parent_task_id=f"{task['node']}:{task['id']}") == []


def test_parent_task_id_unknown_parent_is_empty_not_404(shared_node: NodeProcess) -> None:
    nid = shared_node.node_id
    assert flat(shared_node, parent_task_id=f"{nid}:999999999") == []
    assert flat(shared_node, parent_task_id="nowhere:1") == []


@pytest.mark.parametrize("value", ["-1", "unset", ""])
def test_parent_task_id_no_filter_values(shared_node: NodeProcess, tree: Tree, value: str) -> None:
    # ``unset`` and empty are Elasticsearch's "no filter"; ``-1`` too, as the docs say (compatibility.md).
    ours = with_opaque(flat(shared_node, actions="test:sleep*", parent_task_id=value), tree.opaque)
    assert len(ours) == 3


def test_parent_task_id_combines_with_actions(shared_node: NodeProcess, tree: Tree) -> None:
    assert len(flat(shared_node, parent_task_id=tree.parent, actions="test:sleep[c]")) == 2
    assert flat(shared_node, parent_task_id=tree.parent, actions="test:sleep") == []


# ------------------------------------------------------------------------------------- nodes


@pytest.mark.parametrize("selector", ["_local", "_all", "_master", "shared", "sha*", "ghost,_local", "{id}"])
def test_nodes_selectors_that_select_this_node(
    shared_node: NodeProcess, tree: Tree, selector: str
) -> None:
    nid = shared_node.node_id
    body = list_body(shared_node, actions="test:sleep*", nodes=selector.replace("{id}", nid))
    assert list(body["nodes"]) == [nid]
    assert tree.ids(shared_node) <= task_ids_in_nodes(body)


@pytest.mark.parametrize("selector", ["ghost", "no-such-node-id", "other*", "zone:a", "master:true"])
def test_nodes_selectors_that_select_nothing(shared_node: NodeProcess, tree: Tree, selector: str) -> None:
    # Terms that resolve to nothing are ignored: an empty answer, not an error.
    assert list_body(shared_node, actions="test:sleep*", nodes=selector) == {"nodes": {}}
    assert list_body(shared_node, nodes=selector, group_by="none") == {"tasks": []}


def test_node_attributes_in_header_and_selectors(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "attrs", node_name="zoned", extra_args=["--attr", "zone=a"])
    node.start()
    try:
        nid = node.node_id
        body = list_body(node, actions=LIST)
        entry = body["nodes"][nid]
        assert list(entry) == ["name", "transport_address", "host", "ip", "roles", "attributes", "tasks"]
        assert entry["attributes"] == {"zone": "a"}
        for selector in ("zone:a", "zo*:a", "zone:*", "task:true"):
            assert list(list_body(node, actions=LIST, nodes=selector)["nodes"]) == [nid], selector
        for selector in ("zone:b", "task:false", "_all,task:false"):
            assert list_body(node, actions=LIST, nodes=selector) == {"nodes": {}}, selector
    finally:
        node.stop()


# ---------------------------------------------------------------------------------- waiting


def test_wait_for_completion_waits_until_matching_tasks_finish(shared_node: NodeProcess) -> None:
    opaque = new_opaque()
    parent = shared_node.start_sleep({"X-Opaque-Id": opaque}, children_per_node=2, duration="1s")
    try:
        shared_node.wait_until(lambda: len(flat(shared_node, parent_task_id=parent)) == 2)
        started = time.monotonic()
        waited = flat(shared_node, parent_task_id=parent, wait_for_completion="true")
        elapsed = time.monotonic() - started
        assert len(waited) == 2
        # Snapshots are taken once the tasks finished: their running time covers the whole sleep.
        assert all(t["running_time_in_nanos"] >= 900_000_000 for t in waited)
        assert elapsed > 0.1
        assert flat(shared_node, parent_task_id=parent) == []
    finally:
        cancel_and_wait(shared_node, parent)


def test_wait_for_completion_times_out_with_a_node_failure(shared_node: NodeProcess, tree: Tree) -> None:
    started = time.monotonic()
    body = list_body(shared_node, parent_task_id=tree.parent, wait_for_completion="true", timeout="200ms")
    assert time.monotonic() - started < 10
    nid = shared_node.node_id
    assert body == {
        "node_failures": [
            {
                "type": "failed_node_exception",
                "reason": f"Failed node [{nid}]",
                "node_id": nid,
                "caused_by": {"type": "timeout_exception", "reason": "timed out after [200ms/200ms]"},
            }
        ],
        "nodes": {},
    }
    # The tasks waited on are untouched.
    assert len(flat(shared_node, parent_task_id=tree.parent)) == 2


def test_wait_for_completion_never_waits_on_list_requests(shared_node: NodeProcess) -> None:
    opaque = new_opaque()
    body = list_body(
        shared_node, {"X-Opaque-Id": opaque},
        actions=f"{LIST}*", wait_for_completion="true", timeout="5s", group_by="none",
    )
    assert "node_failures" not in body
    assert {t["action"] for t in with_opaque(body["tasks"], opaque)} == {LIST, LIST + "[n]"}


def test_timeout_without_waiting_is_accepted(shared_node: NodeProcess, tree: Tree) -> None:
    body = list_body(shared_node, parent_task_id=tree.parent, timeout="1s", group_by="none")
    assert len(body["tasks"]) == 2


# ------------------------------------------------------------------------- requests as tasks


def test_list_request_is_itself_a_task_with_a_node_child(shared_node: NodeProcess) -> None:
    opaque = new_opaque()
    response = shared_node.get("/_tasks", params={"group_by": "none"}, headers={"X-Opaque-Id": opaque})
    assert response.status_code == 200
    assert response.headers["X-Opaque-Id"] == opaque
    assert response.headers["X-Elastic-Product"] == "Elasticsearch"
    ours = with_opaque(response.json()["tasks"], opaque)
    by_action = {t["action"]: t for t in ours}
    assert sorted(by_action) == [LIST, LIST + "[n]"]
    coordinating, per_node = by_action[LIST], by_action[LIST + "[n]"]
    assert coordinating["type"] == "transport"
    assert "parent_task_id" not in coordinating
    assert coordinating["cancellable"] is True and coordinating["cancelled"] is False
    assert per_node["type"] == "direct"
    assert per_node["parent_task_id"] == f"{coordinating['node']}:{coordinating['id']}"
    assert per_node["headers"] == coordinating["headers"] == {"X-Opaque-Id": opaque}
    # Finished: a later listing no longer shows them.
    assert with_opaque(flat(shared_node), opaque) == []


def test_opaque_id_and_traceparent_are_captured_into_task_headers(shared_node: NodeProcess) -> None:
    opaque = new_opaque()
    headers = {"X-Opaque-Id": opaque, "traceparent": TRACEPARENT, "X-elastic-product-origin": "kibana"}
    body = list_body(shared_node, headers, actions=f"{LIST}*", group_by="none")
    ours = with_opaque(body["tasks"], opaque)
    assert len(ours) == 2
    expected = {
        "X-Opaque-Id": opaque,
        "traceparent": TRACEPARENT,
        "trace.id": TRACE_ID,
        "X-elastic-product-origin": "kibana",
    }
    for task in ours:
        assert task["headers"] == expected


def test_other_request_headers_are_not_captured(shared_node: NodeProcess) -> None:
    opaque = new_opaque()
    body = list_body(
        shared_node, {"X-Opaque-Id": opaque, "X-Custom": "nope", "Authorization": "Basic Zm9vOmJhcg=="},
        actions=f"{LIST}*", group_by="none",
    )
    for task in with_opaque(body["tasks"], opaque):
        assert task["headers"] == {"X-Opaque-Id": opaque}


def test_headers_are_copied_to_children_of_an_action(shared_node: NodeProcess) -> None:
    opaque = new_opaque()
    parent = shared_node.start_sleep({"X-Opaque-Id": opaque, "traceparent": TRACEPARENT}, children_per_node=2
    )
    try:
        shared_node.wait_until(lambda: len(flat(shared_node, parent_task_id=parent)) == 2)
        tasks = with_opaque(flat(shared_node, actions="test:sleep*"), opaque)
        assert len(tasks) == 3
        expected = {"X-Opaque-Id": opaque, "traceparent": TRACEPARENT, "trace.id": TRACE_ID}
        for task in tasks:
            assert task["headers"] == expected
    finally:
        cancel_and_wait(shared_node, parent)


def test_running_list_request_shows_up_in_another_listing(shared_node: NodeProcess, tree: Tree) -> None:
    opaque = new_opaque()

    def waiting_list() -> httpx.Response:
        return httpx.get(
            shared_node.url + "/_tasks",
            params={"parent_task_id": tree.parent, "wait_for_completion": "true", "timeout": "30s"},
            headers={"X-Opaque-Id": opaque},
            timeout=60,
        )

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(waiting_list)
        try:
            shared_node.wait_until(
                lambda: len(with_opaque(flat(shared_node, actions=f"{LIST}*"), opaque)) == 2,
                message="the waiting list request never showed up",
            )
            seen = with_opaque(flat(shared_node, actions=f"{LIST}*", detailed="true"), opaque)
            assert {t["action"] for t in seen} == {LIST, LIST + "[n]"}
        finally:
            cancel_and_wait(shared_node, tree.parent)
        answer = pending.result(timeout=60)
    assert answer.status_code == 200
    waited = answer.json()["nodes"]
    children = [t for entry in waited.values() for t in entry["tasks"].values()]
    assert len(children) == 2
    assert all(t["cancelled"] is True for t in children)


# --------------------------------------------------------------------------------- rendering


def test_human_adds_readable_time_twins(shared_node: NodeProcess, tree: Tree) -> None:
    for params in ({"group_by": "none"}, {"group_by": "parents"}):
        body = list_body(shared_node, actions="test:sleep*", human="true", detailed="true", **params)
        if params["group_by"] == "none":
            tasks = with_opaque(body["tasks"], tree.opaque)
        else:
            top = body["tasks"][tree.parent]
            tasks = [top, *top["children"]]
        assert len(tasks) == 3
        for task in tasks:
            assert_field_order(task)
            moment = datetime.fromtimestamp(task["start_time_in_millis"] / 1000, tz=UTC)
            expected = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{task['start_time_in_millis'] % 1000:03d}Z"
            assert task["start_time"] == expected
            assert TIME_VALUE.fullmatch(task["running_time"]), task["running_time"]
    plain = with_opaque(flat(shared_node, actions="test:sleep*", human="false"), tree.opaque)
    assert all("start_time" not in t and "running_time" not in t for t in plain)


def test_pretty_output_is_indented(shared_node: NodeProcess, tree: Tree) -> None:
    params = {"actions": "test:sleep*", "detailed": "true"}
    pretty = shared_node.get("/_tasks", params={**params, "pretty": "true"})
    assert pretty.status_code == 200
    body = pretty.json()
    assert pretty.text == json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    assert pretty.text.startswith('{\n  "nodes": {\n    "')
    compact = shared_node.get("/_tasks", params=params)
    assert "\n" not in compact.text
    assert compact.text == json.dumps(compact.json(), separators=(",", ":"), ensure_ascii=False)


def test_filter_path_includes(shared_node: NodeProcess, tree: Tree) -> None:
    body = list_body(shared_node, actions="test:sleep*", filter_path="nodes.*.tasks.*.action")
    assert list(body) == ["nodes"]
    for entry in body["nodes"].values():
        assert list(entry) == ["tasks"]
        for task in entry["tasks"].values():
            assert list(task) == ["action"]
    actions = [t["action"] for e in body["nodes"].values() for t in e["tasks"].values()]
    assert actions.count("test:sleep[c]") >= 2

    body = list_body(shared_node, actions="test:sleep*", filter_path="nodes.*.name,nodes.*.tasks.*.id")
    for entry in body["nodes"].values():
        assert entry["name"] == "shared"
        assert all(list(task) == ["id"] for task in entry["tasks"].values())


def test_filter_path_double_wildcard(shared_node: NodeProcess, tree: Tree) -> None:
    body = list_body(
        shared_node, parent_task_id=tree.parent, group_by="none", filter_path="**.parent_task_id"
    )
    assert body == {"tasks": [{"parent_task_id": tree.parent}, {"parent_task_id": tree.parent}]}
    headers = list_body(shared_node, parent_task_id=tree.parent, filter_path="**.X-Opaque-Id")
    opaques = [
        t["headers"]["X-Opaque-Id"] for e in headers["nodes"].values() for t in e["tasks"].values()
    ]
    assert opaques == [tree.opaque, tree.opaque]


def test_filter_path_excludes(shared_node: NodeProcess, tree: Tree) -> None:
    body = list_body(shared_node, parent_task_id=tree.parent, group_by="none", filter_path="-**.headers")
    assert len(body["tasks"]) == 2
    for task in body["tasks"]:
        assert "headers" not in task
        assert task["parent_task_id"] == tree.parent
    body = list_body(
        shared_node, parent_task_id=tree.parent, filter_path="nodes,-nodes.*.tasks.*.headers,-nodes.*.roles"
    )
    for entry in body["nodes"].values():
        assert "roles" not in entry and entry["name"] == "shared"
        assert len(entry["tasks"]) == 2
        assert all("headers" not in t and "id" in t for t in entry["tasks"].values())


def test_filter_path_matching_nothing_is_an_empty_object(shared_node: NodeProcess, tree: Tree) -> None:
    response = shared_node.get("/_tasks", params={"filter_path": "no.such.field"})
    assert response.status_code == 200
    assert response.json() == {}
