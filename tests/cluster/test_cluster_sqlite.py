"""Three real nodes on one shared SQLite file: listing, get, cancel across nodes, secret, node loss."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from clusterproc import Cluster
from nodeproc import NodeProcess

LIST = "cluster:monitor/tasks/lists"


def opaque() -> dict[str, str]:
    return {"X-Opaque-Id": f"cl-{uuid.uuid4().hex}"}


def tasks_of(node: NodeProcess, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    body = node.get("/_tasks", params={"group_by": "none", "detailed": "true", **params}).json()
    mine: list[dict[str, Any]] = [
        t for t in body["tasks"] if t["headers"].get("X-Opaque-Id") == headers["X-Opaque-Id"]
    ]
    return mine


def start_everywhere(cluster: Cluster, headers: dict[str, str]) -> list[str]:
    return [n.start_sleep(headers=headers, duration="10m") for n in cluster.nodes]


def test_every_node_sees_the_whole_cluster(shared_cluster: Cluster) -> None:
    ids = {n.node_id for n in shared_cluster.nodes}
    for node in shared_cluster.nodes:
        node.wait_until(lambda n=node: set(n.get("/_nodes").json()["nodes"]) == ids,
                        message="a node does not see the others")
        nodes = node.get("/_nodes").json()["nodes"]
        assert {entry["name"] for entry in nodes.values()} == {"n1", "n2", "n3"}
        rows = node.get("/_cat/nodes", params={"h": "name", "format": "json"}).json()
        assert sorted(r["name"] for r in rows) == ["n1", "n2", "n3"]
    # Each node reports its own process and machine figures, whichever node answers.
    rows = shared_cluster.nodes[0].get(
        "/_cat/nodes", params={"h": "name,pid,cpu,ram.percent,load_1m,uptime", "format": "json"}
    ).json()
    pids = {node.node_name: node.pid for node in shared_cluster.nodes}
    for row in rows:
        assert int(row["pid"]) == pids[row["name"]]
        assert row["cpu"] is not None and row["ram.percent"] is not None
        assert row["load_1m"] is not None and row["uptime"] is not None


@pytest.mark.parametrize("group_by", ["nodes", "parents", "none"])
def test_listing_from_any_node_shows_tasks_of_all(shared_cluster: Cluster, group_by: str) -> None:
    headers = opaque()
    started = start_everywhere(shared_cluster, headers)
    body = shared_cluster.nodes[1].get(
        "/_tasks", params={"group_by": group_by, "actions": "test:*"}, headers=headers
    ).json()
    assert "node_failures" not in body
    if group_by == "nodes":
        assert set(body["nodes"]) == {n.node_id for n in shared_cluster.nodes}
        for node in shared_cluster.nodes:
            entry = body["nodes"][node.node_id]
            assert entry["name"] == node.node_name
            assert entry["transport_address"] == node.url.removeprefix("http://")
            assert [t for t in entry["tasks"] if t in started] == [
                t for t in started if t.startswith(node.node_id)
            ]
    elif group_by == "parents":
        assert set(started) <= set(body["tasks"])
    else:
        assert set(started) <= {f"{t['node']}:{t['id']}" for t in body["tasks"]}
    for task_id in started:
        shared_cluster.nodes[0].post(f"/_tasks/{task_id}/_cancel")


@pytest.mark.parametrize(("human", "detailed"), [("false", "true"), ("true", "true"),
                                                  ("false", "false")])
def test_nodes_encoded_by_their_owners_read_like_one_built_here(
    shared_cluster: Cluster, human: str, detailed: str
) -> None:
    """Compact ``group_by=nodes`` embeds each node's own encoding (non-detailed: built straight
    from the tasks); ``pretty`` builds it here, from parsed tasks. Same fields, same order."""
    headers = opaque()
    started = start_everywhere(shared_cluster, headers)
    params = {"actions": "test:*", "detailed": detailed, "human": human}
    embedded = shared_cluster.nodes[2].get("/_tasks", params=params).json()
    built = shared_cluster.nodes[2].get("/_tasks", params={**params, "pretty": "true"}).json()

    def steady(body: dict[str, Any]) -> dict[str, Any]:
        """Without the fields that move between two requests."""
        for entry in body["nodes"].values():
            entry["tasks"] = {
                task_id: {k: v for k, v in task.items()
                          if not k.startswith("running_time") and k != "status"}
                for task_id, task in entry["tasks"].items() if task_id in started
            }
        return body

    for entry in embedded["nodes"].values():
        assert all(("running_time" in task) == (human == "true") for task in entry["tasks"].values())
    assert list(embedded["nodes"]) == list(built["nodes"])
    assert steady(embedded) == steady(built)
    for node_id, entry in embedded["nodes"].items():
        for task_id, task in entry["tasks"].items():
            assert list(task) == list(built["nodes"][node_id]["tasks"][task_id]), task_id
    for task_id in started:
        shared_cluster.nodes[0].post(f"/_tasks/{task_id}/_cancel")


def test_list_runs_as_a_child_task_on_every_node(shared_cluster: Cluster) -> None:
    headers = opaque()
    start_everywhere(shared_cluster, headers)
    body = shared_cluster.nodes[0].get(
        "/_tasks", params={"group_by": "none", "actions": LIST + "*"}, headers=headers
    ).json()
    mine = [t for t in body["tasks"] if t["headers"].get("X-Opaque-Id") == headers["X-Opaque-Id"]]
    coordinator = [t for t in mine if t["action"] == LIST]
    assert len(coordinator) == 1 and coordinator[0]["node"] == shared_cluster.nodes[0].node_id
    parent = f"{coordinator[0]['node']}:{coordinator[0]['id']}"
    children = [t for t in mine if t["action"] == LIST + "[n]"]
    assert {t["node"] for t in children} == {n.node_id for n in shared_cluster.nodes}
    assert {t["parent_task_id"] for t in children} == {parent}
    shared_cluster.nodes[0].post("/_tasks/_cancel", params={"actions": "test:*"})


def test_get_and_cancel_a_task_of_another_node(shared_cluster: Cluster) -> None:
    n1, n2, n3 = shared_cluster.nodes
    task_id = n2.start_sleep(duration="10m")
    running = n1.get(f"/_tasks/{task_id}").json()
    assert running["completed"] is False and running["task"]["node"] == n2.node_id

    cancelled = n3.post(f"/_tasks/{task_id}/_cancel", params={"wait_for_completion": "true"}).json()
    assert list(cancelled["nodes"]) == [n2.node_id]
    assert cancelled["nodes"][n2.node_id]["tasks"][task_id]["cancelled"] is True

    stored = n1.get(f"/_tasks/{task_id}").json()
    assert stored["completed"] is True
    assert stored["error"] == {
        "type": "task_cancelled_exception", "reason": "task cancelled [by user request]",
    }


def test_cancel_by_node_selector_touches_only_that_node(shared_cluster: Cluster) -> None:
    n1, n2, _ = shared_cluster.nodes
    headers = opaque()
    start_everywhere(shared_cluster, headers)
    answer = n1.post(
        "/_tasks/_cancel", params={"actions": "test:*", "nodes": "n2", "wait_for_completion": "true"}
    ).json()
    assert list(answer["nodes"]) == [n2.node_id]
    left = tasks_of(n1, headers, actions="test:*")
    assert sorted(t["node"] for t in left) == sorted(n.node_id for n in shared_cluster.nodes if n is not n2)
    n1.post("/_tasks/_cancel", params={"actions": "test:*", "wait_for_completion": "true"})
    assert tasks_of(n1, headers, actions="test:*") == []


@pytest.mark.parametrize("secret", [None, "forged"])
def test_internal_endpoints_refuse_callers_without_the_secret(
    shared_cluster: Cluster, secret: str | None
) -> None:
    n1 = shared_cluster.nodes[0]
    task_id = n1.start_sleep(duration="10m")
    headers = {} if secret is None else {"X-Taskwarden-Cluster-Secret": secret}
    body = {
        "request": {"task_id": task_id},
        "parent": {"task_id": "x:1", "action": "cluster:admin/tasks/cancel", "headers": {}},
    }
    response = n1.post("/_internal/tasks/cancel", json=body, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["type"] == "security_exception"
    still = n1.get(f"/_tasks/{task_id}").json()
    assert still["completed"] is False and still["task"]["cancelled"] is False
    n1.post(f"/_tasks/{task_id}/_cancel")
    for path in ("/_internal/tasks/list", "/_internal/tasks/get", "/_internal/bans",
                 "/_internal/actions/run", "/_internal/nodes/stats"):
        refused = n1.post(path, json={}, headers=headers)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"]["type"] == "security_exception"


def test_killed_node_is_a_node_failure_then_leaves_and_its_tasks_fail(cluster: Cluster) -> None:
    n1, n2, n3 = cluster.nodes
    background = n3.start_sleep(duration="10m")
    n3.kill()

    body = n1.get("/_tasks", params={"actions": "test:*", "timeout": "10s"}).json()
    # Until its heartbeat goes stale the dead node is still asked, and fails; then it is gone.
    assert {f["node_id"] for f in body.get("node_failures", [])} <= {n3.node_id}
    assert n3.node_id not in body["nodes"]
    for failure in body.get("node_failures", []):
        assert failure["type"] == "failed_node_exception"
        assert failure["caused_by"]["type"] == "node_not_connected_exception"

    n1.wait_until(lambda: n3.node_id not in n1.get("/_nodes").json()["nodes"], timeout=30,
                  message="killed node still a member")
    n1.wait_until(lambda: n2.get(f"/_tasks/{background}").json().get("completed") is True,
                  timeout=30, message="task of the departed node not settled")
    outcome = n2.get(f"/_tasks/{background}").json()
    assert outcome["error"]["type"] == "node_closed_exception"
    assert "left the cluster" in outcome["error"]["reason"]

    back = cluster.restart(3)
    assert back.node_id == n3.node_id
    n1.wait_until(lambda: back.node_id in n1.get("/_nodes").json()["nodes"], timeout=30)
    assert back.get(f"/_tasks/{background}").json()["error"] == outcome["error"]


def test_node_killed_while_a_list_waits_on_it(cluster: Cluster) -> None:
    """A list in flight (waiting for tasks to finish) reports the killed node, without a hang."""
    n1, _, n3 = cluster.nodes
    headers = opaque()
    started = start_everywhere(cluster, headers)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            n1.get, "/_tasks",
            params={"actions": "test:sleep", "wait_for_completion": "true", "timeout": "60s"},
            headers=headers, timeout=90,
        )
        # The list is in flight once it shows up as a task on the victim.
        n1.wait_until(
            lambda: any(t["action"].startswith(LIST) for t in n3.running("cluster:*")),
            message="the list did not reach the victim",
        )
        n3.kill()
        for task_id in started[:2]:
            n1.post(f"/_tasks/{task_id}/_cancel")
        answer = pending.result()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [f["node_id"] for f in body["node_failures"]] == [n3.node_id]
    assert body["node_failures"][0]["caused_by"]["type"] == "node_not_connected_exception"
    assert n3.node_id not in body["nodes"]
    metrics = n1.get("/_prometheus/metrics").text
    assert f'taskwarden_fan_out_failures_total{{node="{n3.node_id}"}} 1.0' in metrics


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_internal/tasks/list", {"request": {"timeout_nanos": "soon"}, "parent": {"task_id": "x:1"}}),
        ("/_internal/tasks/list", {"request": {}, "parent": {"task_id": "x:1"}}),
        ("/_internal/tasks/cancel", {"request": {"task_id": "nonsense"}, "parent": []}),
        ("/_internal/tasks/get", {"task_id": "x:1", "timeout_nanos": "soon"}),
        ("/_internal/actions/run",
         {"parent": {"task_id": "x:1", "action": "a"}, "children": [{"action": "a", "params": [1]}]}),
        ("/_internal/actions/run", {"parent": {"task_id": "x:1", "action": "a"}, "children": {}}),
        ("/_internal/actions/run", {"parent": {"task_id": "x:1", "action": "a"}, "children": [3]}),
    ],
)
def test_malformed_internal_requests_are_400s(
    shared_cluster: Cluster, path: str, body: dict[str, Any]
) -> None:
    n1 = shared_cluster.nodes[0]
    headers = {"X-Taskwarden-Cluster-Secret": shared_cluster.secret()}
    response = n1.post(path, json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "illegal_argument_exception"
    assert n1.get("/").status_code == 200


def test_hot_threads_fan_out_to_the_selected_nodes(shared_cluster: Cluster) -> None:
    n1, n2, _ = shared_cluster.nodes
    quick = {"interval": "10ms", "snapshots": "1"}
    text = n1.get("/_nodes/hot_threads", params=quick).text
    blocks = [line for line in text.split("\n") if line.startswith("::: ")]
    assert sorted(line.split("}")[0] for line in blocks) == ["::: {n1", "::: {n2", "::: {n3"]
    assert text.count("   Hot threads at ") == 3
    only = n1.get(f"/_nodes/{n2.node_id}/hot_threads", params=quick).text
    assert only.startswith(f"::: {{n2}}{{{n2.node_id}}}") and only.count("::: ") == 1
