"""``GET /_tasks/{id}`` and both cancel endpoints over real HTTP against a real node."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from nodeproc import NodeProcess

FIELD_ORDER = [
    "node", "id", "type", "action", "status", "description", "start_time", "start_time_in_millis",
    "running_time", "running_time_in_nanos", "cancellable", "cancelled", "parent_task_id", "headers",
    "resource_stats",
]
CANCELLED_BY_USER = {"type": "task_cancelled_exception", "reason": "task cancelled [by user request]"}
CANCEL = "cluster:admin/tasks/cancel"
GET = "cluster:monitor/task/get"


def new_opaque() -> str:
    return f"gc-{uuid.uuid4().hex}"


def flat(node: NodeProcess, **params: str) -> list[dict[str, Any]]:
    response = node.get("/_tasks", params={"group_by": "none", **params})
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


def tid(task: dict[str, Any]) -> str:
    return f"{task['node']}:{task['id']}"


def running(node: NodeProcess, task_id: str) -> dict[str, Any] | None:
    """The live task (detailed), or None once it has unregistered."""
    node_part, number = task_id.rsplit(":", 1)
    for task in flat(node, detailed="true", actions="test:*"):
        if task["node"] == node_part and str(task["id"]) == number:
            return task
    return None


def get_task(node: NodeProcess, task_id: str, **params: str) -> httpx.Response:
    return node.get(f"/_tasks/{task_id}", params=params)


def cancel(node: NodeProcess, task_id: str | None = None, **params: str) -> httpx.Response:
    path = f"/_tasks/{task_id}/_cancel" if task_id else "/_tasks/_cancel"
    return node.post(path, params=params)


def cancel_and_wait(node: NodeProcess, task_id: str) -> None:
    response = cancel(node, task_id, wait_for_completion="true")
    assert response.status_code == 200, response.text


def finished(node: NodeProcess, task_id: str) -> dict[str, Any]:
    """The stored outcome, waiting for the task to end."""
    response = get_task(node, task_id, wait_for_completion="true", timeout="30s")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["completed"] is True
    return body


def assert_field_order(task: dict[str, Any]) -> None:
    keys = list(task)
    assert set(keys) <= set(FIELD_ORDER), keys
    assert keys == sorted(keys, key=FIELD_ORDER.index), keys


def children_of(node: NodeProcess, parent: str, count: int) -> list[dict[str, Any]]:
    node.wait_until(lambda: len(flat(node, parent_task_id=parent)) == count, message="children")
    return flat(node, parent_task_id=parent, detailed="true")


@pytest.fixture
def sleeper(shared_node: NodeProcess) -> Iterator[str]:
    task_id = shared_node.start_sleep({"X-Opaque-Id": new_opaque()})
    try:
        yield task_id
    finally:
        cancel_and_wait(shared_node, task_id)


# ------------------------------------------------------------------------------------------ get


def test_get_running_task(shared_node: NodeProcess, sleeper: str) -> None:
    response = get_task(shared_node, sleeper)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["completed", "task"]
    assert body["completed"] is False
    task = body["task"]
    assert_field_order(task)
    assert tid(task) == sleeper
    assert task["action"] == "test:sleep" and task["type"] == "transport"
    # The get snapshot is always detailed.
    assert isinstance(task["description"], str)
    assert set(task["status"]) == {"phase", "elapsed_millis", "children"}
    assert task["cancellable"] is True and task["cancelled"] is False
    assert "X-Opaque-Id" in task["headers"]


def test_get_running_task_human(shared_node: NodeProcess, sleeper: str) -> None:
    task = get_task(shared_node, sleeper, human="true").json()["task"]
    assert_field_order(task)
    assert task["start_time"].endswith("Z")
    assert isinstance(task["running_time"], str)
    assert "start_time" not in get_task(shared_node, sleeper).json()["task"]


def test_get_wait_for_completion_times_out_with_429(shared_node: NodeProcess, sleeper: str) -> None:
    started = time.monotonic()
    response = get_task(shared_node, sleeper, wait_for_completion="true", timeout="300ms")
    assert time.monotonic() - started >= 0.25
    assert response.status_code == 429
    reason = "timed out after [300ms/300ms]"
    assert response.json() == {
        "error": {
            "root_cause": [{"type": "timeout_exception", "reason": reason}],
            "type": "timeout_exception",
            "reason": reason,
        },
        "status": 429,
    }
    # The task itself is untouched.
    task = running(shared_node, sleeper)
    assert task is not None and task["cancelled"] is False


def test_get_wait_for_completion_returns_the_stored_response(shared_node: NodeProcess) -> None:
    opaque = new_opaque()
    task_id = shared_node.start_sleep({"X-Opaque-Id": opaque}, duration="300ms")
    body = finished(shared_node, task_id)
    assert list(body) == ["completed", "task", "response"]
    assert body["response"]["children"] == 0
    assert body["response"]["slept_millis"] >= 250
    task = body["task"]
    assert tid(task) == task_id
    assert_field_order(task)
    assert task["running_time_in_nanos"] >= 250_000_000
    assert task["headers"]["X-Opaque-Id"] == opaque
    # Stored task infos carry no ``cancelled`` flag, as Elasticsearch's .tasks documents.
    assert "cancelled" not in task and task["cancellable"] is True


def test_get_finished_task_answers_from_the_store(shared_node: NodeProcess) -> None:
    task_id = shared_node.start_sleep(duration="0s", children_per_node=1)
    shared_node.wait_until(lambda: get_task(shared_node, task_id).json().get("completed") is True)
    first = get_task(shared_node, task_id)
    assert first.status_code == 200
    body = first.json()
    assert body["response"] == {"slept_millis": body["response"]["slept_millis"], "children": 1}
    assert body["task"]["action"] == "test:sleep"
    assert body["task"]["status"]["children"] == 1
    # Stable: the same stored answer every time, even with wait_for_completion.
    assert get_task(shared_node, task_id).json() == body
    assert get_task(shared_node, task_id, wait_for_completion="true").json() == body
    human = get_task(shared_node, task_id, human="true").json()["task"]
    assert_field_order(human)
    assert "start_time" in human and "running_time" in human


def test_get_failed_task_answers_its_error(shared_node: NodeProcess) -> None:
    task_id = shared_node.start_sleep(duration="0s", fail="it broke")
    body = finished(shared_node, task_id)
    assert list(body) == ["completed", "task", "error"]
    assert body["error"] == {"type": "exception", "reason": "it broke"}


def test_get_unknown_task_on_this_node_is_404(shared_node: NodeProcess) -> None:
    missing = f"{shared_node.node_id}:987654321"
    response = get_task(shared_node, missing)
    assert response.status_code == 404
    reason = f"task [{missing}] isn't running and hasn't stored its results"
    assert response.json() == {
        "error": {
            "root_cause": [{"type": "resource_not_found_exception", "reason": reason}],
            "type": "resource_not_found_exception",
            "reason": reason,
        },
        "status": 404,
    }


def test_get_task_of_a_node_not_in_the_cluster_is_404(shared_node: NodeProcess) -> None:
    response = get_task(shared_node, "ghostnode:7")
    assert response.status_code == 404
    inner = {
        "type": "resource_not_found_exception",
        "reason": "task [ghostnode:7] isn't running and hasn't stored its results",
    }
    assert response.json() == {
        "error": {
            # Elasticsearch's root cause is the innermost Elasticsearch exception.
            "root_cause": [inner],
            "type": "resource_not_found_exception",
            "reason": "task [ghostnode:7] belongs to the node [ghostnode] which isn't part of the "
            "cluster and there is no record of the task",
            "caused_by": inner,
        },
        "status": 404,
    }


def test_get_foreground_task_waits_then_answers_its_final_snapshot(shared_node: NodeProcess) -> None:
    opaque = new_opaque()

    def foreground() -> httpx.Response:
        return httpx.post(
            f"{shared_node.url}/_actions/test:sleep", json={"duration": "500ms"},
            headers={"X-Opaque-Id": opaque}, timeout=60,
        )

    def ours() -> list[dict[str, Any]]:
        tasks = flat(shared_node, actions="test:sleep")
        return [t for t in tasks if t["headers"].get("X-Opaque-Id") == opaque]

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(foreground)
        shared_node.wait_until(lambda: len(ours()) == 1)
        task_id = tid(ours()[0])
        assert get_task(shared_node, task_id).json()["completed"] is False
        waited = get_task(shared_node, task_id, wait_for_completion="true")
        assert pending.result(timeout=60).status_code == 200
    # Not a background task, so nothing stored: the snapshot taken when it finished.
    assert waited.status_code == 200
    body = waited.json()
    assert list(body) == ["completed", "task"]
    assert body["completed"] is True
    assert tid(body["task"]) == task_id
    assert body["task"]["running_time_in_nanos"] >= 400_000_000
    gone = get_task(shared_node, task_id)
    assert gone.status_code == 404


def test_child_tasks_are_not_stored(shared_node: NodeProcess) -> None:
    parent = shared_node.start_sleep(children_per_node=1, duration="200ms")
    child = tid(children_of(shared_node, parent, 1)[0])
    finished(shared_node, parent)
    response = get_task(shared_node, child)
    assert response.status_code == 404
    assert response.json()["error"]["reason"] == f"task [{child}] isn't running and hasn't stored its results"


def test_waiting_get_request_is_itself_a_task(shared_node: NodeProcess, sleeper: str) -> None:
    opaque = new_opaque()

    def waiting_get() -> httpx.Response:
        return httpx.get(
            f"{shared_node.url}/_tasks/{sleeper}",
            params={"wait_for_completion": "true", "timeout": "60s"},
            headers={"X-Opaque-Id": opaque},
            timeout=90,
        )

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(waiting_get)
        try:
            shared_node.wait_until(
                lambda: any(t["headers"].get("X-Opaque-Id") == opaque for t in flat(shared_node, actions=GET))
            )
            [task] = [t for t in flat(shared_node, actions=GET) if t["headers"].get("X-Opaque-Id") == opaque]
            assert task["type"] == "transport"
            assert "parent_task_id" not in task
        finally:
            cancel_and_wait(shared_node, sleeper)
        answer = pending.result(timeout=60)
    assert answer.status_code == 200
    body = answer.json()
    assert body["completed"] is True
    assert body["error"] == CANCELLED_BY_USER


# --------------------------------------------------------------------------------- cancel by id


def test_cancel_by_id_answers_the_task_cancelled(shared_node: NodeProcess) -> None:
    opaque = new_opaque()
    parent = shared_node.start_sleep({"X-Opaque-Id": opaque}, children_per_node=2)
    children = children_of(shared_node, parent, 2)
    response = cancel(shared_node, parent)
    assert response.status_code == 200
    body = response.json()
    nid = shared_node.node_id
    assert list(body) == ["nodes"]
    entry = body["nodes"][nid]
    assert list(entry) == ["name", "transport_address", "host", "ip", "roles", "tasks"]
    # Only the matched task, not the descendants it reached.
    assert list(entry["tasks"]) == [parent]
    task = entry["tasks"][parent]
    assert_field_order(task)
    assert task["cancellable"] is True and task["cancelled"] is True
    assert "status" not in task and "description" not in task
    assert task["headers"]["X-Opaque-Id"] == opaque
    # The cancel reached the children too, and everything stores/ends as cancelled.
    assert finished(shared_node, parent)["error"] == CANCELLED_BY_USER
    for child in children:
        assert running(shared_node, tid(child)) is None


def test_cancel_reaches_children_which_show_cancelled(shared_node: NodeProcess) -> None:
    parent = shared_node.start_sleep(children_per_node=2, stop_delay="2s")
    children = children_of(shared_node, parent, 2)
    try:
        assert cancel(shared_node, parent).status_code == 200
        # Still running their slow cleanup, but already flagged.
        for child in flat(shared_node, parent_task_id=parent):
            assert child["cancelled"] is True
        assert {tid(c) for c in flat(shared_node, parent_task_id=parent)} == {tid(c) for c in children}
    finally:
        cancel_and_wait(shared_node, parent)
    assert flat(shared_node, parent_task_id=parent) == []


def test_cancelled_task_stays_listed_while_its_stop_delay_runs(shared_node: NodeProcess) -> None:
    task_id = shared_node.start_sleep(stop_delay="2s")
    shared_node.wait_until(lambda: (t := running(shared_node, task_id)) is not None
                           and t["status"]["phase"] == "sleeping")
    try:
        assert cancel(shared_node, task_id).status_code == 200
        shared_node.wait_until(lambda: (t := running(shared_node, task_id)) is None
                               or t["status"]["phase"] == "stopping")
        task = running(shared_node, task_id)
        assert task is not None, "the task vanished before its stop_delay ran out"
        assert task["cancelled"] is True
        body = get_task(shared_node, task_id).json()
        assert body["completed"] is False and body["task"]["cancelled"] is True
    finally:
        cancel_and_wait(shared_node, task_id)
    assert finished(shared_node, task_id)["error"] == CANCELLED_BY_USER


def test_parent_notices_cancel_while_children_still_stop(shared_node: NodeProcess) -> None:
    parent = shared_node.start_sleep(children_per_node=1, stop_delay="2s")
    [child] = children_of(shared_node, parent, 1)
    try:
        assert cancel(shared_node, parent).status_code == 200
        shared_node.wait_until(
            lambda: (t := running(shared_node, parent)) is None or t["status"]["phase"] == "stopping",
            timeout=10,
        )
        # The parent began its own slow stop while its child was still in its own.
        assert running(shared_node, tid(child)) is not None
    finally:
        cancel_and_wait(shared_node, parent)


def test_cancel_wait_for_completion_returns_after_the_tree_finished(shared_node: NodeProcess) -> None:
    opaque = new_opaque()
    parent = shared_node.start_sleep(children_per_node=2, stop_delay="1s")
    children_of(shared_node, parent, 2)

    def waiting_cancel() -> httpx.Response:
        return httpx.post(
            f"{shared_node.url}/_tasks/{parent}/_cancel",
            params={"wait_for_completion": "true"},
            headers={"X-Opaque-Id": opaque},
            timeout=60,
        )

    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(waiting_cancel)
        # While it waits, the cancel request is a (non-cancellable) task with a per-node child.
        shared_node.wait_until(
            lambda: len([t for t in flat(shared_node, actions=f"{CANCEL}*")
                         if t["headers"].get("X-Opaque-Id") == opaque]) == 2
            or pending.done()
        )
        seen = {t["action"]: t for t in flat(shared_node, actions=f"{CANCEL}*")
                if t["headers"].get("X-Opaque-Id") == opaque}
        response = pending.result(timeout=60)
    assert time.monotonic() - started >= 0.9
    assert sorted(seen) == [CANCEL, CANCEL + "[n]"]
    assert seen[CANCEL]["cancellable"] is False and "cancelled" not in seen[CANCEL]
    assert seen[CANCEL + "[n]"]["parent_task_id"] == tid(seen[CANCEL])
    assert response.status_code == 200
    tasks = [t for e in response.json()["nodes"].values() for t in e["tasks"].values()]
    assert [tid(t) for t in tasks] == [parent]
    assert tasks[0]["cancelled"] is True
    # Nothing of the tree is left running the moment the answer arrives.
    assert running(shared_node, parent) is None
    assert flat(shared_node, parent_task_id=parent) == []
    body = get_task(shared_node, parent).json()
    assert body["completed"] is True and body["error"] == CANCELLED_BY_USER


def test_cancel_twice_is_idempotent(shared_node: NodeProcess) -> None:
    task_id = shared_node.start_sleep(stop_delay="1s")
    try:
        first = cancel(shared_node, task_id).json()
        second = cancel(shared_node, task_id).json()
        for body in (first, second):
            assert "node_failures" not in body and "task_failures" not in body
            [task] = [t for e in body["nodes"].values() for t in e["tasks"].values()]
            assert tid(task) == task_id and task["cancelled"] is True
    finally:
        cancel_and_wait(shared_node, task_id)


def test_cancel_by_id_of_non_cancellable_task_is_a_node_failure(shared_node: NodeProcess) -> None:
    task_id = shared_node.start_sleep(cancellable=False, duration="1s")
    nid = shared_node.node_id
    response = cancel(shared_node, task_id)
    assert response.status_code == 200
    assert response.json() == {
        "node_failures": [
            {
                "type": "failed_node_exception",
                "reason": f"Failed node [{nid}]",
                "node_id": nid,
                "caused_by": {
                    "type": "illegal_argument_exception",
                    "reason": f"task [{task_id}] doesn't support cancellation",
                },
            }
        ],
        "nodes": {},
    }
    task = running(shared_node, task_id)
    assert task is not None
    assert task["cancellable"] is False and "cancelled" not in task
    # It runs to its end and succeeds.
    body = finished(shared_node, task_id)
    assert "response" in body and "error" not in body


def test_cancel_by_id_of_unknown_task_is_a_node_failure(shared_node: NodeProcess) -> None:
    nid = shared_node.node_id
    missing = f"{nid}:987654321"
    response = cancel(shared_node, missing)
    assert response.status_code == 200
    assert response.json() == {
        "node_failures": [
            {
                "type": "failed_node_exception",
                "reason": f"Failed node [{nid}]",
                "node_id": nid,
                "caused_by": {
                    "type": "resource_not_found_exception",
                    "reason": f"task [{missing}] is not found",
                },
            }
        ],
        "nodes": {},
    }


def test_cancel_by_id_on_unknown_node_is_a_node_failure(shared_node: NodeProcess) -> None:
    response = cancel(shared_node, "ghostnode:3")
    assert response.status_code == 200
    assert response.json() == {
        "node_failures": [
            {
                "type": "failed_node_exception",
                "reason": "Failed node [ghostnode]",
                "node_id": "ghostnode",
                "caused_by": {
                    "type": "no_such_node_exception",
                    "reason": "No such node [ghostnode]",
                    "node_id": "ghostnode",
                },
            }
        ],
        "nodes": {},
    }


def test_cancel_by_id_must_also_match_the_filters(shared_node: NodeProcess, sleeper: str) -> None:
    response = cancel(shared_node, sleeper, actions="other:*")
    assert response.status_code == 200
    body = response.json()
    assert body["nodes"] == {}
    [failure] = body["node_failures"]
    assert failure["caused_by"] == {
        "type": "illegal_argument_exception",
        "reason": f"task [{sleeper}] doesn't support this operation",
    }
    task = running(shared_node, sleeper)
    assert task is not None and task["cancelled"] is False
    matching = cancel(shared_node, sleeper, actions="test:*").json()
    assert [tid(t) for e in matching["nodes"].values() for t in e["tasks"].values()] == [sleeper]


def test_cancel_by_id_with_nodes_is_rejected(shared_node: NodeProcess, sleeper: str) -> None:
    response = cancel(shared_node, sleeper, nodes="_local")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "action_request_validation_exception"
    assert error["reason"] == "Validation Failed: 1: task id cannot be used together with node ids;"
    task = running(shared_node, sleeper)
    assert task is not None and task["cancelled"] is False


@pytest.mark.parametrize("group_by", ["none", "parents"])
def test_cancel_answers_in_the_requested_shape(shared_node: NodeProcess, sleeper: str, group_by: str) -> None:
    body = cancel(shared_node, sleeper, group_by=group_by).json()
    assert list(body) == ["tasks"]
    if group_by == "none":
        [task] = body["tasks"]
    else:
        assert list(body["tasks"]) == [sleeper]
        task = body["tasks"][sleeper]
    assert tid(task) == sleeper and task["cancelled"] is True


def test_cancel_timeout_reports_tasks_still_running(shared_node: NodeProcess) -> None:
    task_id = shared_node.start_sleep(stop_delay="1s")
    try:
        response = cancel(shared_node, task_id, wait_for_completion="true", timeout="200ms")
        assert response.status_code == 200
        body = response.json()
        number = int(task_id.rsplit(":", 1)[1])
        assert body["task_failures"] == [
            {
                "task_id": number,
                "node_id": shared_node.node_id,
                "status": "TOO_MANY_REQUESTS",
                "reason": {"type": "timeout_exception", "reason": "timed out after [200ms/200ms]"},
            }
        ]
        task = running(shared_node, task_id)
        assert task is not None and task["cancelled"] is True
    finally:
        cancel_and_wait(shared_node, task_id)


# ----------------------------------------------------------------------------- cancel by filter


def test_cancel_by_actions_and_parent(shared_node: NodeProcess) -> None:
    parent = shared_node.start_sleep(children_per_node=2)
    children = {tid(c) for c in children_of(shared_node, parent, 2)}
    try:
        response = cancel(shared_node, actions="test:sleep[c]", parent_task_id=parent)
        assert response.status_code == 200
        cancelled = {tid(t): t for e in response.json()["nodes"].values() for t in e["tasks"].values()}
        assert set(cancelled) == children
        assert all(t["cancelled"] is True for t in cancelled.values())
        # The parent was not matched and is not cancelled.
        task = running(shared_node, parent)
        assert task is not None and task["cancelled"] is False
        shared_node.wait_until(lambda: flat(shared_node, parent_task_id=parent) == [])
        task = running(shared_node, parent)
        assert task is not None and task["cancelled"] is False
    finally:
        cancel_and_wait(shared_node, parent)


def test_cancel_by_parent_does_not_match_the_parent(shared_node: NodeProcess) -> None:
    parent = shared_node.start_sleep(children_per_node=1)
    [child] = children_of(shared_node, parent, 1)
    try:
        body = cancel(shared_node, parent_task_id=parent, group_by="none").json()
        assert [tid(t) for t in body["tasks"]] == [tid(child)]
        task = running(shared_node, parent)
        assert task is not None and task["cancelled"] is False
    finally:
        cancel_and_wait(shared_node, parent)


@pytest.mark.parametrize("selector", ["ghost", "zone:a", "other*"])
def test_cancel_with_nodes_selecting_nothing_cancels_nothing(
    shared_node: NodeProcess, selector: str
) -> None:
    parent = shared_node.start_sleep(children_per_node=1)
    children_of(shared_node, parent, 1)
    try:
        response = cancel(shared_node, nodes=selector, parent_task_id=parent)
        assert response.status_code == 200
        assert response.json() == {"nodes": {}}
        assert all(t["cancelled"] is False for t in flat(shared_node, parent_task_id=parent))
    finally:
        cancel_and_wait(shared_node, parent)


@pytest.mark.parametrize("selector", ["_local", "_all", "shared", "{id}"])
def test_cancel_with_nodes_selecting_this_node(shared_node: NodeProcess, selector: str) -> None:
    parent = shared_node.start_sleep(children_per_node=1)
    [child] = children_of(shared_node, parent, 1)
    try:
        nid = shared_node.node_id
        body = cancel(shared_node, nodes=selector.replace("{id}", nid), parent_task_id=parent).json()
        assert list(body["nodes"]) == [nid]
        assert list(body["nodes"][nid]["tasks"]) == [tid(child)]
    finally:
        cancel_and_wait(shared_node, parent)


def test_cancel_filters_skip_non_cancellable_tasks_and_the_cancel_itself(node: NodeProcess) -> None:
    keep = node.start_sleep(cancellable=False, duration="2s")
    first = node.start_sleep()
    second = node.start_sleep(children_per_node=1)
    child = tid(children_of(node, second, 1)[0])
    opaque = new_opaque()
    response = node.post("/_tasks/_cancel", params={"group_by": "none"}, headers={"X-Opaque-Id": opaque})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["tasks"]
    matched = {tid(t): t for t in body["tasks"]}
    # Every cancellable task, none of the non-cancellable ones, and never the cancel request itself.
    assert keep not in matched
    assert set(matched) == {first, second, child}
    assert not any(t["action"].startswith(CANCEL) for t in matched.values())
    assert all(t["cancellable"] is True and t["cancelled"] is True for t in matched.values())
    assert finished(node, first)["error"] == CANCELLED_BY_USER
    assert finished(node, second)["error"] == CANCELLED_BY_USER
    kept = finished(node, keep)
    assert "error" not in kept and kept["response"]["children"] == 0


def test_cancel_by_actions_wildcard_on_a_fresh_node(node: NodeProcess) -> None:
    sleeping = [node.start_sleep() for _ in range(3)]
    response = node.post("/_tasks/_cancel", params={"actions": "test:*", "wait_for_completion": "true"})
    assert response.status_code == 200
    body = response.json()
    nid = node.node_id
    assert list(body["nodes"]) == [nid]
    assert set(body["nodes"][nid]["tasks"]) == set(sleeping)
    assert flat(node, actions="test:*") == []
    nothing = node.post("/_tasks/_cancel", params={"actions": "test:*"})
    assert nothing.json() == {"nodes": {}}
