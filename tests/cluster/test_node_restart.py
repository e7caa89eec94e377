"""A node that dies and comes back (same id) before the others miss it: what its previous life
left on them (bans, children nobody will collect) ends with that life, as in Elasticsearch,
where bans end with the connection they came over."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from apicheck import SLEEP_PATH
from nodeproc import NodeProcess


class Pair:
    """Two nodes on one SQLite store that would wait a minute before declaring a node gone."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes = [self.node(1), self.node(2)]
        self.earlier: list[NodeProcess] = []  # killed lives, stopped (their pipes closed) at the end

    def node(self, index: int) -> NodeProcess:
        return NodeProcess(self.root / f"n{index}", node_name=f"n{index}", extra_args=[
            "--store", f"sqlite:///{self.root / 'cluster.db'}", "--heartbeat-timeout", "60s",
        ])


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    nodes = Pair(tmp_path)
    try:
        for node in nodes.nodes:
            node.start()
        first = nodes.nodes[0]
        first.wait_until(lambda: len(first.get("/_nodes").json()["nodes"]) == 2)
        yield nodes
    finally:
        for node in [*nodes.nodes, *nodes.earlier]:
            node.stop()


def local_tree(node: NodeProcess, opaque: str) -> list[dict[str, Any]]:
    body = node.get("/_tasks", params={"group_by": "none", "actions": "test:*",
                                        "nodes": "_local"}).json()
    return [t for t in body["tasks"] if t["headers"].get("X-Opaque-Id") == opaque]


def restart_first(pair: Pair) -> NodeProcess:
    pair.nodes[0].kill()
    pair.earlier.append(pair.nodes[0])
    again = pair.node(1)
    again.start()
    pair.nodes[0] = again
    return again


def test_children_of_the_previous_life_are_cancelled(pair: Pair) -> None:
    n1, n2 = pair.nodes
    opaque = f"restart-{uuid.uuid4().hex}"
    n1.start_sleep(headers={"X-Opaque-Id": opaque}, duration="10m", children_per_node=1)
    n2.wait_until(lambda: len(local_tree(n2, opaque)) == 1, message="no child on n2")
    n1 = restart_first(pair)
    n2.wait_until(lambda: local_tree(n2, opaque) == [], timeout=30,
                  message="the previous life's child kept running")
    n2.wait_until(lambda: any("restarted" in line for line in n2.output), timeout=30,
                  message="the restart went unnoticed")
    assert not any("left the cluster" in line for line in n2.output)
    assert n1.node_id in n2.get("/_nodes").json()["nodes"]


def test_bans_of_the_previous_life_do_not_refuse_the_next_life_s_children(pair: Pair) -> None:
    """The new life numbers its tasks again; one may get the id of a banned parent."""
    n1, n2 = pair.nodes
    opaque = f"restart-{uuid.uuid4().hex}"
    with ThreadPoolExecutor(1) as pool:
        # A foreground parent (not journaled: the next life may reuse its number) whose child
        # on n2 keeps cleaning up for a minute after the cancel, so n2 keeps the ban.
        pool.submit(_run_quietly, n1.url, opaque)
        n2.wait_until(lambda: len(local_tree(n2, opaque)) == 1, message="no child on n2")
        parent = next(t for t in local_tree(n1, opaque) if t["action"] == "test:sleep")
        n1.post(f"/_tasks/{parent['node']}:{parent['id']}/_cancel")
        n2.wait_until(lambda: all(t["cancelled"] for t in local_tree(n2, opaque)))
        n1 = restart_first(pair)
    n2.wait_until(lambda: any("restarted" in line for line in n2.output), timeout=30)
    # Start tasks with a child on n2 until the new life hands out the banned parent's number.
    number = 0
    while number < parent["id"]:
        task_id = n1.start_sleep(duration="0s", children_per_node=1)
        number = int(task_id.rsplit(":", 1)[1])
        outcome = n1.get(f"/_tasks/{task_id}", params={"wait_for_completion": "true"}).json()
        assert "error" not in outcome, (task_id, outcome)
    n2.kill()  # its old child still cleans up for a minute: a graceful stop would wait for it


def _run_quietly(url: str, opaque: str) -> None:
    with contextlib.suppress(httpx.HTTPError):  # its node is killed under it
        httpx.post(f"{url}{SLEEP_PATH}", headers={"X-Opaque-Id": opaque}, timeout=120, json={
            "duration": "10m", "children_per_node": 1, "stop_delay": "60s",
        })
