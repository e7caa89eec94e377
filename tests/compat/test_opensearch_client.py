"""The official ``opensearch-py`` client, unchanged, against a real taskwarden node.

opensearch-py sends plain ``application/json`` (no compatible-with media type), passes the
global ``pretty``/``human``/``error_trace``/``format``/``filter_path`` parameters on every API, and
raises ``NotFoundError`` (404), ``RequestError`` (400) or ``TransportError`` with the error type.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from nodeproc import NodeProcess
from opensearchpy import NotFoundError, OpenSearch, RequestError, TransportError
from sleeps import Sleeps


@pytest.fixture
def client(shared_node: NodeProcess) -> Iterator[OpenSearch]:
    os_client = OpenSearch(shared_node.url, timeout=30)
    try:
        yield os_client
    finally:
        os_client.close()


def key(task: dict[str, Any]) -> str:
    return f"{task['node']}:{task['id']}"


def error_body(err: TransportError) -> dict[str, Any]:
    """The server's JSON error answer, which opensearch-py keeps as ``info``."""
    body = err.info
    assert isinstance(body, dict)
    return body


def node_tasks(body: Any, node_id: str) -> dict[str, Any]:
    tasks: dict[str, Any] = body["nodes"][node_id]["tasks"]
    return tasks


def test_info(client: OpenSearch, shared_node: NodeProcess) -> None:
    info = client.info()
    assert info["name"] == shared_node.node_name
    assert {"cluster_name", "cluster_uuid", "version", "tagline"} <= set(info)
    assert isinstance(info["version"]["number"], str)


def test_plain_json_for_a_plain_json_client(shared_node: NodeProcess) -> None:
    # What opensearch-py's deserializer sees: a JSON media type it knows, and ES's product header.
    response = shared_node.get("/", headers={"accept": "application/json"})
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-elastic-product"] == "Elasticsearch"


# --------------------------------------------------------------------------------------------
# tasks.list


def test_list_detailed_group_by_none(client: OpenSearch, sleeps: Sleeps, shared_node_id: str) -> None:
    task_id = sleeps.start(duration="1h")
    body = client.tasks.list(detailed=True, actions="test:sleep", group_by="none")
    mine = next(t for t in body["tasks"] if key(t) == task_id)
    assert mine["node"] == shared_node_id
    assert mine["cancellable"] is True
    assert "description" in mine
    assert "status" in mine
    brief = client.tasks.list(actions="test:sleep", group_by="none")
    assert "description" not in next(t for t in brief["tasks"] if key(t) == task_id)


def test_list_group_by_nodes(client: OpenSearch, sleeps: Sleeps, shared_node: NodeProcess,
                             shared_node_id: str) -> None:
    task_id = sleeps.start(duration="1h")
    body = client.tasks.list(actions="test:sleep", group_by="nodes")
    assert body["nodes"][shared_node_id]["name"] == shared_node.node_name
    assert node_tasks(body, shared_node_id)[task_id]["action"] == "test:sleep"
    assert task_id in node_tasks(client.tasks.list(actions="test:sleep"), shared_node_id)


def test_list_group_by_parents_and_parent_task_id(client: OpenSearch, sleeps: Sleeps) -> None:
    parent = sleeps.start(duration="1h", children_per_node=2)
    children = sorted(key(c) for c in sleeps.wait_for_children(parent, 2))
    grouped = client.tasks.list(actions="test:sleep*", group_by="parents")
    assert sorted(key(c) for c in grouped["tasks"][parent]["children"]) == children
    filtered = client.tasks.list(parent_task_id=parent, group_by="none")
    assert sorted(key(t) for t in filtered["tasks"]) == children


def test_list_nodes(client: OpenSearch, sleeps: Sleeps, shared_node_id: str) -> None:
    task_id = sleeps.start(duration="1h")
    for selector in (shared_node_id, "_local", f"_local,{shared_node_id}"):
        body = client.tasks.list(nodes=selector, actions="test:sleep")
        assert task_id in node_tasks(body, shared_node_id), selector
    assert client.tasks.list(nodes="nobody-here", actions="test:sleep") == {"nodes": {}}


def test_global_parameters(client: OpenSearch, sleeps: Sleeps) -> None:
    # opensearch-py offers format and filter_path on every API: ES accepts both everywhere.
    task_id = sleeps.start(duration="1h")
    body = client.tasks.list(actions="test:sleep", group_by="none", format="json", filter_path="tasks.id")
    assert {"id": int(task_id.split(":")[1])} in body["tasks"]
    human = client.tasks.list(actions="test:sleep", group_by="none", human=True, pretty=True)
    assert isinstance(next(t for t in human["tasks"] if key(t) == task_id)["running_time"], str)


# --------------------------------------------------------------------------------------------
# tasks.get


def test_get_running_and_finished(client: OpenSearch, sleeps: Sleeps) -> None:
    running = sleeps.start(duration="1h")
    answer = client.tasks.get(task_id=running)
    assert answer["completed"] is False
    assert key(answer["task"]) == running

    quick = sleeps.start(duration="10ms")
    sleeps.wait_completed(quick)
    stored = client.tasks.get(task_id=quick)
    assert stored["completed"] is True
    assert stored["response"]["children"] == 0
    assert "error" not in stored


def test_get_waiting(client: OpenSearch, sleeps: Sleeps) -> None:
    # opensearch-py takes a ``timeout`` keyword as its own socket timeout, so the server's
    # default wait (30s) applies here.
    task_id = sleeps.start(duration="100ms")
    answer = client.tasks.get(task_id=task_id, wait_for_completion=True)
    assert answer["completed"] is True
    assert answer["response"]["children"] == 0


def test_other_statuses_raise_transport_error(client: OpenSearch, sleeps: Sleeps) -> None:
    task_id = sleeps.start(duration="1h")
    with pytest.raises(TransportError) as info:
        client.transport.perform_request(
            "GET", f"/_tasks/{task_id}", params={"wait_for_completion": "true", "timeout": "20ms",
                                                 "request_timeout": 30}
        )
    assert info.value.status_code == 429
    assert info.value.error == "timeout_exception"


# --------------------------------------------------------------------------------------------
# tasks.cancel


def test_cancel_by_id_waiting(client: OpenSearch, sleeps: Sleeps, shared_node_id: str) -> None:
    task_id = sleeps.start(duration="1h")
    body = client.tasks.cancel(task_id=task_id, wait_for_completion=True)
    assert node_tasks(body, shared_node_id)[task_id]["cancelled"] is True
    stored = client.tasks.get(task_id=task_id)
    assert stored["completed"] is True
    assert stored["error"]["type"] == "task_cancelled_exception"
    assert stored["error"]["reason"] == "task cancelled [by user request]"


def test_cancel_by_actions(client: OpenSearch, sleeps: Sleeps, shared_node_id: str) -> None:
    parent = sleeps.start(duration="1h", children_per_node=2)
    children = {key(c) for c in sleeps.wait_for_children(parent, 2)}
    body = client.tasks.cancel(actions="test:sleep[c]", parent_task_id=parent, wait_for_completion=True)
    assert set(node_tasks(body, shared_node_id)) == children
    assert not sleeps.children_of(parent)  # waited until they were gone

    others = [sleeps.start(duration="1h"), sleeps.start(duration="1h")]
    body = client.tasks.cancel(actions="test:sleep")
    assert {parent, *others} <= set(node_tasks(body, shared_node_id))


def test_cancel_unknown_task_reports_a_node_failure(client: OpenSearch, shared_node_id: str) -> None:
    body = client.tasks.cancel(task_id=f"{shared_node_id}:987654321")
    assert body["node_failures"][0]["caused_by"]["type"] == "resource_not_found_exception"


# --------------------------------------------------------------------------------------------
# cat.tasks


def test_cat_tasks_json_and_text(client: OpenSearch, sleeps: Sleeps) -> None:
    ids = [sleeps.start(duration="1h"), sleeps.start(duration="1h")]
    rows = client.cat.tasks(format="json", actions="test:sleep")
    assert set(ids) <= {r["task_id"] for r in rows}
    assert all(r["action"] == "test:sleep" for r in rows)

    text = client.cat.tasks(v=True, h="ti,ac,id", s="id:desc", actions="test:sleep")
    assert isinstance(text, str)
    header, *lines = text.splitlines()
    assert header.split() == ["ti", "ac", "id"]
    numbers = [int(line.split()[2]) for line in lines]
    assert numbers == sorted(numbers, reverse=True)
    assert set(ids) <= {line.split()[0] for line in lines}


# --------------------------------------------------------------------------------------------
# exceptions


def test_unknown_task_is_not_found(client: OpenSearch, shared_node_id: str) -> None:
    missing = f"{shared_node_id}:987654321"
    with pytest.raises(NotFoundError) as info:
        client.tasks.get(task_id=missing)
    assert info.value.status_code == 404
    assert info.value.error == "resource_not_found_exception"
    body = error_body(info.value)
    assert body["error"]["reason"] == f"task [{missing}] isn't running and hasn't stored its results"


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda c: c.tasks.get(task_id="no-colon"), "malformed task id no-colon"),
        (lambda c: c.tasks.list(group_by="bogus"),
         "[group_by] must be one of [nodes], [parents] or [none] but was [bogus]"),
        (lambda c: c.tasks.list(detailed="yes"),
         "Failed to parse value [yes] as only [true] or [false] are allowed."),
        (lambda c: c.tasks.list(parent_task_id="oops"), "malformed task id oops"),
        (lambda c: c.cat.tasks(format="json", detailed="1"),
         "Failed to parse value [1] as only [true] or [false] are allowed."),
        (lambda c: c.tasks.list(params={"detailled": "true"}),
         "request [/_tasks] contains unrecognized parameter: [detailled] -> did you mean [detailed]?"),
    ],
)
def test_bad_requests_raise_request_error(client: OpenSearch, call: Any, reason: str) -> None:
    with pytest.raises(RequestError) as info:
        call(client)
    assert info.value.status_code == 400
    assert info.value.error == "illegal_argument_exception"
    body = error_body(info.value)
    assert body["error"]["reason"] == reason
    assert body["status"] == 400
