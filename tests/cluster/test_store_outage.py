"""The store goes away under a running cluster: requests fail cleanly, nodes recover, nobody leaves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterproc import Cluster
from postgres import PostgresServer


@pytest.fixture
def outage_cluster(tmp_path: Path) -> Iterator[tuple[Cluster, PostgresServer]]:
    server = PostgresServer()  # its own server: the test stops it
    server.start()
    cluster = Cluster(tmp_path, server.create_database())
    try:
        cluster.start(2)
        yield cluster, server
    finally:
        cluster.stop()
        server.stop()


def test_store_outage_fails_requests_cleanly_and_the_cluster_recovers(
    outage_cluster: tuple[Cluster, PostgresServer],
) -> None:
    cluster, server = outage_cluster
    n1, n2 = cluster.nodes
    ids = {n1.node_id, n2.node_id}
    before = n1.start_sleep(duration="0s")
    stored = n1.get(f"/_tasks/{before}", params={"wait_for_completion": "true"}).json()
    assert stored["completed"] is True
    server.pause()
    try:
        headers = {"X-Opaque-Id": f"outage-{uuid.uuid4().hex}"}
        refused = n1.post("/_actions/test:sleep", params={"wait_for_completion": "false"},
                          json={"duration": "0s"}, headers=headers)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["type"] == "store_unavailable_exception"
        listed = n1.get("/_tasks", params={"group_by": "none", "detailed": "true"}).json()
        assert "node_failures" not in listed
        assert not [t for t in listed["tasks"] if t["headers"].get("X-Opaque-Id") == headers["X-Opaque-Id"]]
        # Work that needs no store goes on.
        waited = n2.post("/_actions/test:sleep", json={"duration": "0s"})
        assert waited.status_code == 200, waited.text
        # Long enough for every heartbeat to go stale: still, nobody is declared gone.
        n1.wait_until(lambda: "heartbeat failed" in "".join(n1.output), timeout=30)
        n1.wait_until(lambda: sum("heartbeat failed" in line for line in n1.output) >= 6, timeout=30)
    finally:
        server.resume()
    task_id = n1.start_sleep(duration="0s")
    n1.wait_until(lambda: n2.get(f"/_tasks/{task_id}").json().get("completed") is True, timeout=30)
    for node in (n1, n2):
        assert set(node.get("/_nodes").json()["nodes"]) == ids
        # What was stored before the server went down is still there.
        assert node.get(f"/_tasks/{before}").json() == stored
        assert not any("left the cluster" in line for line in node.output)
