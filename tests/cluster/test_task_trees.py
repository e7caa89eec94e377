"""Task trees spanning three nodes: cancel reaches every child, bans refuse late children."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from clusterproc import Cluster
from nodeproc import NodeProcess

CANCELLED = {"type": "task_cancelled_exception", "reason": "task cancelled [by user request]"}


def opaque() -> dict[str, str]:
    return {"X-Opaque-Id": f"tree-{uuid.uuid4().hex}"}


def tree_tasks(
    node: NodeProcess, headers: dict[str, str], nodes: str = "_all"
) -> list[dict[str, Any]]:
    body = node.get(
        "/_tasks", params={"group_by": "none", "actions": "test:*", "nodes": nodes}
    ).json()
    assert "node_failures" not in body, body
    return [t for t in body["tasks"] if t["headers"].get("X-Opaque-Id") == headers["X-Opaque-Id"]]


def start_tree(cluster: Cluster, headers: dict[str, str], **params: Any) -> str:
    n1 = cluster.nodes[0]
    parent = n1.start_sleep(headers=headers, duration="10m", children_per_node=2, **params)
    n1.wait_until(lambda: len(tree_tasks(n1, headers)) == 1 + 2 * len(cluster.nodes),
                  message="tree did not start on every node")
    return parent


def test_tree_spans_every_node_with_parent_and_headers(shared_cluster: Cluster) -> None:
    headers = opaque()
    parent = start_tree(shared_cluster, headers)
    tasks = tree_tasks(shared_cluster.nodes[2], headers)
    children = [t for t in tasks if t["action"] == "test:sleep[c]"]
    assert sorted(t["node"] for t in children) == sorted(
        n.node_id for n in shared_cluster.nodes for _ in range(2)
    )
    assert {t["parent_task_id"] for t in children} == {parent}
    shared_cluster.nodes[1].post(f"/_tasks/{parent}/_cancel", params={"wait_for_completion": "true"})


def test_cancel_with_wait_returns_after_the_whole_tree_stopped(shared_cluster: Cluster) -> None:
    _, n2, n3 = shared_cluster.nodes
    headers = opaque()
    parent = start_tree(shared_cluster, headers, stop_delay="300ms")
    began = time.monotonic()
    answer = n3.post(f"/_tasks/{parent}/_cancel", params={"wait_for_completion": "true"})
    assert answer.status_code == 200, answer.text
    assert time.monotonic() - began >= 0.3  # the children's slow cleanup was waited for
    assert "task_failures" not in answer.json() and "node_failures" not in answer.json()
    for node in shared_cluster.nodes:
        assert tree_tasks(node, headers) == []
    assert n2.get(f"/_tasks/{parent}").json()["error"] == CANCELLED


def test_cancel_without_wait_marks_then_stops_every_child(shared_cluster: Cluster) -> None:
    n1, n2, _ = shared_cluster.nodes
    headers = opaque()
    parent = start_tree(shared_cluster, headers, stop_delay="1s")
    answer = n2.post(f"/_tasks/{parent}/_cancel").json()
    assert answer["nodes"][n1.node_id]["tasks"][parent]["cancelled"] is True
    for node in shared_cluster.nodes:
        # While their cleanup runs, every task of the tree is listed as cancelled.
        assert all(t["cancelled"] for t in tree_tasks(node, headers))
    n1.wait_until(lambda: all(tree_tasks(n, headers) == [] for n in shared_cluster.nodes),
                  message="tree still running")


def test_cancel_by_parent_task_id_across_nodes(shared_cluster: Cluster) -> None:
    n1, n2, _ = shared_cluster.nodes
    headers = opaque()
    parent = start_tree(shared_cluster, headers)
    answer = n2.post("/_tasks/_cancel", params={"parent_task_id": parent}).json()
    cancelled = [t for entry in answer["nodes"].values() for t in entry["tasks"]]
    assert len(cancelled) == 2 * len(shared_cluster.nodes)
    n1.wait_until(lambda: [t["action"] for t in tree_tasks(n1, headers)] == ["test:sleep"],
                  message="children still running")
    n1.post(f"/_tasks/{parent}/_cancel", params={"wait_for_completion": "true"})


def test_late_child_is_refused_by_the_ban(shared_cluster: Cluster) -> None:
    """Deterministic: a cancel answers once every ban is acknowledged, and the tree lingers
    (stop_delay) with its bans in place; a child request for the parent then reaches a node that
    holds its children, the way a slow spawn would."""
    n1, n2, _ = shared_cluster.nodes
    headers = opaque()
    parent = start_tree(shared_cluster, headers, stop_delay="5s")
    n1.post(f"/_tasks/{parent}/_cancel")
    late = n2.post(
        "/_internal/actions/run",
        headers={"X-Taskwarden-Cluster-Secret": shared_cluster.secret()},
        json={
            "parent": {"task_id": parent, "action": "test:sleep", "headers": headers},
            "children": [{"action": "test:sleep[c]", "params": {"duration": "10m"}}],
        },
        timeout=10,
    )
    assert late.status_code == 200, late.text
    (line,) = [json.loads(text) for text in late.text.splitlines()]
    assert line["i"] == 0 and line["status"] == 400
    assert line["error"]["type"] == "task_cancelled_exception"
    assert line["error"]["reason"] == "task cancelled before starting [by user request]"
    assert all(t["cancelled"] for t in tree_tasks(n2, headers))
    n1.wait_until(lambda: all(tree_tasks(n, headers) == [] for n in shared_cluster.nodes), timeout=30)


def test_children_started_after_the_cancel_are_refused(shared_cluster: Cluster) -> None:
    n1 = shared_cluster.nodes[0]
    headers = opaque()
    parent = n1.start_sleep(headers=headers, duration="100ms", children_per_node=1,
                            spawn_delay="500ms", ignore_cancel=True)
    n1.post(f"/_tasks/{parent}/_cancel")
    outcome = n1.get(f"/_tasks/{parent}", params={"wait_for_completion": "true"}).json()
    assert outcome["error"]["type"] == "task_cancelled_exception"
    for node in shared_cluster.nodes:
        assert tree_tasks(node, headers) == []


@pytest.mark.parametrize("victim", [1, 2])
def test_killed_node_holding_children_fails_cleanly(cluster: Cluster, victim: int) -> None:
    n1 = cluster.nodes[0]
    headers = opaque()
    parent = start_tree(cluster, headers)
    cluster.nodes[victim].kill()
    answer = n1.post(f"/_tasks/{parent}/_cancel",
                     params={"wait_for_completion": "true", "timeout": "20s"})
    assert answer.status_code == 200, answer.text
    n1.wait_until(lambda: n1.get(f"/_tasks/{parent}").json().get("completed") is True, timeout=30)
    assert n1.get(f"/_tasks/{parent}").json()["error"]["type"] in (
        "task_cancelled_exception", "node_not_connected_exception",
    )


@pytest.mark.parametrize("victim", ["node holding children", "parent's node"])
def test_node_killed_during_a_cancel_with_wait(cluster: Cluster, victim: str) -> None:
    """The cancel answers within its timeout and names the lost node; nothing stays registered."""
    n1, n2, n3 = cluster.nodes
    headers = opaque()
    parent = start_tree(cluster, headers, stop_delay="5s")
    killed, survivors = (n3, [n1, n2]) if victim == "node holding children" else (n1, [n2, n3])
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            n2.post, f"/_tasks/{parent}/_cancel",
            params={"wait_for_completion": "true", "timeout": "30s"}, timeout=60,
        )
        # The cancel has reached the victim: its children are marked and cleaning up (5 s).
        n2.wait_until(
            lambda: any(t["cancelled"] for t in tree_tasks(killed, headers)),
            message="the cancel did not reach the victim",
        )
        killed.kill()
        began = time.monotonic()
        answer = pending.result()
    assert answer.status_code == 200, answer.text
    assert time.monotonic() - began < 30
    body = answer.json()
    if victim == "node holding children":
        failures = body["task_failures"]
        assert [f["reason"]["type"] for f in failures] == ["failed_node_exception"]
        assert failures[0]["reason"]["node_id"] == killed.node_id
    else:
        assert [f["node_id"] for f in body["node_failures"]] == [killed.node_id]
    for node in survivors:
        node.wait_until(lambda node=node: tree_tasks(node, headers, "_local") == [], timeout=30,
                        message="a child outlived the cancel")


def test_children_of_a_hung_parent_node_are_cancelled_once_it_is_gone(cluster: Cluster) -> None:
    n1, n2, n3 = cluster.nodes
    headers = opaque()
    parent = start_tree(cluster, headers)
    n1.freeze()
    try:
        for node in (n2, n3):
            node.wait_until(lambda node=node: tree_tasks(node, headers, "_local") == [],
                            timeout=30, message="children of the hung node still running")
        assert n1.node_id not in n2.get("/_nodes").json()["nodes"]
    finally:
        n1.thaw()
    n2.wait_until(lambda: n1.node_id in n2.get("/_nodes").json()["nodes"], timeout=30,
                  message="the node did not come back")
    # Back, the parent still sleeps (its children's ends are collected when it wakes); a cancel
    # finds nothing left to wait for on the other nodes.
    answer = n1.post(f"/_tasks/{parent}/_cancel",
                     params={"wait_for_completion": "true", "timeout": "20s"})
    assert answer.status_code == 200, answer.text
    for node in cluster.nodes:
        assert tree_tasks(node, headers, "_local") == []


CHILD_BATCH = "/_internal/actions/run"


def _child_batch(cluster: Cluster, headers: dict[str, str], children: list[Any]) -> dict[str, Any]:
    return {
        "headers": {"X-Taskwarden-Cluster-Secret": cluster.secret()},
        "json": {
            "parent": {"task_id": "elsewhere:1", "action": "test:sleep", "headers": headers},
            "children": children,
        },
    }


def test_a_child_batch_streams_one_line_per_child_as_each_ends(shared_cluster: Cluster) -> None:
    n2 = shared_cluster.nodes[1]
    headers = opaque()
    batch = _child_batch(shared_cluster, headers, [
        {"action": "test:sleep[c]", "params": {"duration": "2s"}},
        {"action": "no:such-action", "params": {}},
        {"action": "test:sleep[c]", "params": {"duration": "10ms"}},
        {"action": "test:sleep[c]", "params": {"duration": "soon"}},
    ])
    answer = n2.post(CHILD_BATCH, **batch, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(text) for text in answer.text.splitlines()]
    assert sorted(line["i"] for line in lines) == [0, 1, 2, 3]
    # Refusals come first, then the children in the order they ended.
    assert [line["i"] for line in lines][2:] == [2, 0]
    by_index = {line["i"]: line for line in lines}
    assert by_index[1]["status"] == 404
    assert by_index[1]["error"]["type"] == "resource_not_found_exception"
    assert by_index[3]["status"] == 400
    assert by_index[3]["error"]["type"] == "illegal_argument_exception"
    assert by_index[2]["response"]["children"] == 0
    assert tree_tasks(n2, headers) == []


def test_closing_a_child_batch_cancels_its_running_children(shared_cluster: Cluster) -> None:
    n2 = shared_cluster.nodes[1]
    headers = opaque()
    batch = _child_batch(shared_cluster, headers, [
        {"action": "test:sleep[c]", "params": {"duration": "10m"}} for _ in range(3)
    ])
    with (
        httpx.Client(base_url=n2.url, timeout=30) as client,
        client.stream("POST", CHILD_BATCH, **batch) as reply,
    ):
        assert reply.status_code == 200
        n2.wait_until(lambda: len(tree_tasks(n2, headers)) == 3, message="children did not start")
    n2.wait_until(lambda: tree_tasks(n2, headers) == [], message="children outlived their channel")
