"""The official ``elasticsearch`` 9.x client, unchanged, against a real taskwarden node.

The client checks ``X-Elastic-Product: Elasticsearch`` on 2xx answers, asks for
``application/vnd.elasticsearch+json; compatible-with=9`` and maps error statuses to its own
exceptions; every call below goes through all of that.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError
from nodeproc import NodeProcess
from sleeps import Sleeps

# The tasks APIs are "technical preview" in the 9.x client, which warns on every call.
pytestmark = pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")

COMPAT_9 = "application/vnd.elasticsearch+json;compatible-with=9"


@pytest.fixture
def es(shared_node: NodeProcess) -> Iterator[Elasticsearch]:
    client = Elasticsearch(shared_node.url, request_timeout=30)
    try:
        yield client
    finally:
        client.close()


def key(task: dict[str, Any]) -> str:
    return f"{task['node']}:{task['id']}"


def node_tasks(body: Any, node_id: str) -> dict[str, Any]:
    tasks: dict[str, Any] = body["nodes"][node_id]["tasks"]
    return tasks


# --------------------------------------------------------------------------------------------
# the client accepts our answers


def test_info_passes_the_product_check(es: Elasticsearch, shared_node: NodeProcess) -> None:
    info = es.info()
    assert info["name"] == shared_node.node_name
    assert info["version"]["number"].split(".")[0] in ("8", "9")
    assert {"cluster_name", "cluster_uuid", "tagline"} <= set(info.body)
    assert info.meta.status == 200
    assert info.meta.headers["x-elastic-product"] == "Elasticsearch"
    assert info.meta.headers["content-type"] == COMPAT_9
    assert info.meta.mimetype == "application/vnd.elasticsearch+json"


def test_error_answers_carry_the_product_header_too(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        es.tasks.get(task_id="no-colon")
    assert info.value.meta.headers["x-elastic-product"] == "Elasticsearch"
    assert info.value.meta.headers["content-type"] == COMPAT_9


def test_opaque_id_is_echoed_and_recorded(es: Elasticsearch) -> None:
    traced = es.options(opaque_id="compat-es-1")
    response = traced.tasks.list(actions="cluster:monitor/tasks/lists", detailed=True, group_by="none")
    assert response.meta.headers["x-opaque-id"] == "compat-es-1"
    own = [t for t in response["tasks"] if t["headers"].get("X-Opaque-Id") == "compat-es-1"]
    assert own, response.body  # the list request sees itself, with its caller's header
    assert own[0]["action"] == "cluster:monitor/tasks/lists"


# --------------------------------------------------------------------------------------------
# tasks.list


def test_list_detailed_group_by_none(es: Elasticsearch, sleeps: Sleeps, shared_node_id: str) -> None:
    task_id = sleeps.start(duration="1h")
    body = es.tasks.list(detailed=True, actions="test:sleep", group_by="none").body
    assert isinstance(body["tasks"], list)
    mine = next(t for t in body["tasks"] if key(t) == task_id)
    assert mine["node"] == shared_node_id
    assert mine["action"] == "test:sleep"
    assert mine["cancellable"] is True
    assert mine["cancelled"] is False
    assert "description" in mine
    assert set(mine["status"]) >= {"phase", "elapsed_millis", "children"}
    assert isinstance(mine["start_time_in_millis"], int)
    assert isinstance(mine["running_time_in_nanos"], int)
    assert "parent_task_id" not in mine

    brief = es.tasks.list(actions="test:sleep", group_by="none").body
    plain = next(t for t in brief["tasks"] if key(t) == task_id)
    assert "description" not in plain
    assert "status" not in plain


def test_list_group_by_nodes(es: Elasticsearch, sleeps: Sleeps, shared_node: NodeProcess,
                             shared_node_id: str) -> None:
    task_id = sleeps.start(duration="1h")
    body = es.tasks.list(actions=["test:sleep"]).body  # nodes is the default grouping
    node = body["nodes"][shared_node_id]
    assert node["name"] == shared_node.node_name
    assert {"transport_address", "host", "ip", "roles"} <= set(node)
    assert node["tasks"][task_id]["action"] == "test:sleep"
    explicit = es.tasks.list(actions="test:sleep", group_by="nodes").body
    assert task_id in node_tasks(explicit, shared_node_id)


def test_list_group_by_parents_and_parent_task_id(es: Elasticsearch, sleeps: Sleeps) -> None:
    parent = sleeps.start(duration="1h", children_per_node=2)
    children = sleeps.wait_for_children(parent, 2)

    grouped = es.tasks.list(actions="test:sleep*", group_by="parents").body
    assert isinstance(grouped["tasks"], dict)
    entry = grouped["tasks"][parent]
    assert sorted(key(c) for c in entry["children"]) == sorted(key(c) for c in children)
    assert {c["action"] for c in entry["children"]} == {"test:sleep[c]"}
    assert {c["parent_task_id"] for c in entry["children"]} == {parent}
    assert not set(grouped["tasks"]) & {key(c) for c in children}  # children only nested

    only_children = es.tasks.list(parent_task_id=parent, group_by="none").body["tasks"]
    assert sorted(key(t) for t in only_children) == sorted(key(c) for c in children)
    assert parent not in {key(t) for t in only_children}


def test_list_nodes_selectors(es: Elasticsearch, sleeps: Sleeps, shared_node: NodeProcess,
                              shared_node_id: str) -> None:
    task_id = sleeps.start(duration="1h")
    for selector in (shared_node_id, "_local", "_all", shared_node.node_name, "shar*"):
        body = es.tasks.list(nodes=[selector], actions="test:sleep").body
        assert task_id in node_tasks(body, shared_node_id), selector
    assert es.tasks.list(nodes=["no-such-node"], actions="test:sleep").body == {"nodes": {}}


def test_list_with_filter_path_human_and_timeout(es: Elasticsearch, sleeps: Sleeps) -> None:
    task_id = sleeps.start(duration="1h")
    body = es.tasks.list(actions="test:sleep", group_by="none", filter_path="tasks.id,tasks.node").body
    assert {"node": task_id.split(":")[0], "id": int(task_id.split(":")[1])} in body["tasks"]
    assert all(set(t) == {"node", "id"} for t in body["tasks"])

    human = es.tasks.list(actions="test:sleep", group_by="none", human=True, timeout="10s").body
    mine = next(t for t in human["tasks"] if key(t) == task_id)
    assert isinstance(mine["running_time"], str)
    assert isinstance(mine["start_time"], str)


# --------------------------------------------------------------------------------------------
# tasks.get


def test_get_running_task(es: Elasticsearch, sleeps: Sleeps) -> None:
    task_id = sleeps.start(duration="1h")
    response = es.tasks.get(task_id=task_id)
    assert response["completed"] is False
    assert key(response["task"]) == task_id
    assert response["task"]["action"] == "test:sleep"
    assert "response" not in response.body
    assert "error" not in response.body


def test_get_finished_task_from_the_store(es: Elasticsearch, sleeps: Sleeps) -> None:
    task_id = sleeps.start(duration="10ms")
    sleeps.wait_completed(task_id)
    response = es.tasks.get(task_id=task_id)
    assert response["completed"] is True
    assert key(response["task"]) == task_id
    assert response["response"]["children"] == 0
    assert response["response"]["slept_millis"] >= 5
    assert "error" not in response.body


def test_get_waits_for_completion(es: Elasticsearch, sleeps: Sleeps) -> None:
    task_id = sleeps.start(duration="200ms")
    response = es.tasks.get(task_id=task_id, wait_for_completion=True, timeout="20s")
    assert response["completed"] is True
    assert 150 <= response["response"]["slept_millis"] < 20_000


def test_get_wait_timeout_is_a_429(es: Elasticsearch, sleeps: Sleeps) -> None:
    task_id = sleeps.start(duration="1h")
    with pytest.raises(ApiError) as info:
        es.options(retry_on_status=()).tasks.get(task_id=task_id, wait_for_completion=True, timeout="50ms")
    assert info.value.meta.status == 429
    assert info.value.body["error"]["type"] == "timeout_exception"
    assert info.value.message == "timeout_exception"


# --------------------------------------------------------------------------------------------
# tasks.cancel


def test_cancel_by_id_waiting_for_completion(es: Elasticsearch, sleeps: Sleeps, shared_node_id: str) -> None:
    task_id = sleeps.start(duration="1h")
    body = es.tasks.cancel(task_id=task_id, wait_for_completion=True).body
    cancelled = node_tasks(body, shared_node_id)[task_id]
    assert cancelled["cancelled"] is True
    assert "node_failures" not in body
    # waited: the task is gone from the listing and its outcome is stored
    listed = es.tasks.list(actions="test:sleep", group_by="none").body["tasks"]
    assert task_id not in {key(t) for t in listed}
    stored = es.tasks.get(task_id=task_id)
    assert stored["completed"] is True
    assert stored["error"] == {
        "type": "task_cancelled_exception", "reason": "task cancelled [by user request]"
    }


def test_cancel_by_actions(es: Elasticsearch, sleeps: Sleeps, shared_node_id: str) -> None:
    first, second = sleeps.start(duration="1h"), sleeps.start(duration="1h")
    body = es.tasks.cancel(actions="test:sleep", wait_for_completion=True).body
    cancelled = node_tasks(body, shared_node_id)
    assert {first, second} <= set(cancelled)
    assert all(t["cancelled"] and t["action"] == "test:sleep" for t in cancelled.values())
    for task_id in (first, second):
        assert es.tasks.get(task_id=task_id)["error"]["type"] == "task_cancelled_exception"


def test_cancel_children_by_actions_and_parent(es: Elasticsearch, sleeps: Sleeps,
                                               shared_node_id: str) -> None:
    parent = sleeps.start(duration="1h", children_per_node=2)
    children = {key(c) for c in sleeps.wait_for_children(parent, 2)}
    body = es.tasks.cancel(actions=["test:sleep[c]"], parent_task_id=parent).body
    cancelled = node_tasks(body, shared_node_id)
    assert set(cancelled) == children
    assert all(t["cancelled"] and t["parent_task_id"] == parent for t in cancelled.values())
    assert es.tasks.get(task_id=parent)["completed"] is False  # the parent itself was not matched


def test_cancel_unknown_task_is_a_node_failure_not_an_error(es: Elasticsearch, shared_node_id: str) -> None:
    body = es.tasks.cancel(task_id=f"{shared_node_id}:987654321").body
    failure = body["node_failures"][0]
    assert failure["type"] == "failed_node_exception"
    assert failure["node_id"] == shared_node_id
    assert failure["caused_by"] == {
        "type": "resource_not_found_exception",
        "reason": f"task [{shared_node_id}:987654321] is not found",
    }


def test_cancel_task_id_with_nodes_is_a_validation_error(es: Elasticsearch, shared_node_id: str) -> None:
    with pytest.raises(BadRequestError) as info:
        es.tasks.cancel(task_id=f"{shared_node_id}:1", nodes=[shared_node_id])
    assert info.value.body["error"]["type"] == "action_request_validation_exception"
    assert info.value.body["error"]["reason"] == (
        "Validation Failed: 1: task id cannot be used together with node ids;"
    )


# --------------------------------------------------------------------------------------------
# cat.tasks


def test_cat_tasks_json(es: Elasticsearch, sleeps: Sleeps, shared_node: NodeProcess) -> None:
    task_id = sleeps.start(duration="1h")
    rows = es.cat.tasks(format="json", actions="test:sleep", detailed=True).body
    assert isinstance(rows, list)
    row = next(r for r in rows if r["task_id"] == task_id)
    assert row["action"] == "test:sleep"
    assert row["parent_task_id"] == "-"
    assert row["node"] == shared_node.node_name
    assert isinstance(row["start_time"], str) and row["start_time"].isdigit()
    assert "description" in row


def test_cat_tasks_text_with_headers_and_sort(es: Elasticsearch, sleeps: Sleeps) -> None:
    ids = [sleeps.start(duration="1h"), sleeps.start(duration="1h")]
    text = es.cat.tasks(v=True, h=["id", "ti", "ac"], s="id:desc", actions="test:sleep").body
    assert isinstance(text, str)
    lines = text.splitlines()
    assert lines[0].split() == ["id", "ti", "ac"]
    rows = [line.split() for line in lines[1:]]
    assert all(r[2] == "test:sleep" for r in rows)
    numbers = [int(r[0]) for r in rows]
    assert numbers == sorted(numbers, reverse=True)
    assert set(ids) <= {r[1] for r in rows}

    bare = es.cat.tasks(h="ti", actions="test:sleep").body
    assert set(ids) <= set(bare.split())  # no header line without v
    assert "ti" not in bare.split()


# --------------------------------------------------------------------------------------------
# the client's error mapping


def test_unknown_task_is_not_found(es: Elasticsearch, shared_node_id: str) -> None:
    missing = f"{shared_node_id}:987654321"
    with pytest.raises(NotFoundError) as info:
        es.tasks.get(task_id=missing)
    err = info.value
    assert err.meta.status == 404
    assert err.message == "resource_not_found_exception"
    assert err.body["status"] == 404
    assert err.body["error"]["type"] == "resource_not_found_exception"
    assert err.body["error"]["reason"] == f"task [{missing}] isn't running and hasn't stored its results"
    assert err.body["error"]["root_cause"][0]["type"] == "resource_not_found_exception"


@pytest.mark.parametrize(
    ("task_id", "reason", "cause"),
    [
        ("no-colon", "malformed task id no-colon", None),
        ("node:abc", "malformed task id node:abc", "number_format_exception"),
    ],
)
def test_malformed_task_id_is_a_bad_request(es: Elasticsearch, task_id: str, reason: str,
                                            cause: str | None) -> None:
    with pytest.raises(BadRequestError) as info:
        es.tasks.get(task_id=task_id)
    err = info.value
    assert err.meta.status == 400
    assert err.message == "illegal_argument_exception"
    assert err.body["error"]["type"] == "illegal_argument_exception"
    assert err.body["error"]["reason"] == reason
    assert err.body["error"].get("caused_by", {}).get("type") == cause


def test_unset_task_id_is_a_validation_error(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        es.tasks.get(task_id="unset")
    assert info.value.body["error"] == {
        "root_cause": [{"type": "action_request_validation_exception",
                        "reason": "Validation Failed: 1: task id is required;"}],
        "type": "action_request_validation_exception",
        "reason": "Validation Failed: 1: task id is required;",
    }


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"group_by": "bogus"}, "[group_by] must be one of [nodes], [parents] or [none] but was [bogus]"),
        ({"timeout": "5x"}, "failed to parse setting [timeout] with value [5x] as a time value: "
                            "unit is missing or unrecognized"),
        ({"timeout": "1.5s"}, "failed to parse [1.5s], fractional time values are not supported"),
        ({"detailed": "yes"}, "Failed to parse value [yes] as only [true] or [false] are allowed."),
        ({"parent_task_id": "oops"}, "malformed task id oops"),
    ],
)
def test_bad_parameters_are_bad_requests(es: Elasticsearch, kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(BadRequestError) as info:
        es.tasks.list(**kwargs)
    assert info.value.meta.status == 400
    assert info.value.body["error"]["type"] == "illegal_argument_exception"
    assert info.value.body["error"]["reason"] == reason


def test_unknown_parameter_suggests_the_close_one(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        es.perform_request(
            "GET", "/_tasks", params={"detailled": "true"}, headers={"accept": "application/json"}
        )
    assert info.value.body["error"]["reason"] == (
        "request [/_tasks] contains unrecognized parameter: [detailled] -> did you mean [detailed]?"
    )


def test_error_trace_adds_a_stack_trace(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        es.tasks.get(task_id="no-colon", error_trace=True)
    assert isinstance(info.value.body["error"]["stack_trace"], str)
    with pytest.raises(BadRequestError) as plain:
        es.tasks.get(task_id="no-colon")
    assert "stack_trace" not in plain.value.body["error"]


def test_hot_threads_text_through_the_client(es: Elasticsearch, shared_node: NodeProcess) -> None:
    text = es.nodes.hot_threads(interval="10ms", snapshots=1, threads=2, ignore_idle_threads=False)
    assert str(text).startswith(f"::: {{{shared_node.node_name}}}")
    assert "busiestThreads=2, ignoreIdleThreads=false:" in str(text)
