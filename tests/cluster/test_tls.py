"""HTTPS: a node serving ``--cert/--key``, and two secured nodes on one SQLite file calling each
other's internal endpoints over HTTPS, their certificates checked against ``--ca-cert``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clusterproc import HEARTBEAT_TIMEOUT, Cluster
from nodeproc import ADMIN_PASSWORD, NodeProcess
from tlsfiles import TlsFiles

ADMIN = ("admin", ADMIN_PASSWORD)


class TlsCluster(Cluster):
    """Nodes on one SQLite file, each with ``--security`` and HTTPS (certificate, key and CA)."""

    def __init__(self, root: Path, tls: TlsFiles) -> None:
        super().__init__(root)
        self.tls = tls

    def new_node(self, index: int, *, ca: Path | None = None) -> NodeProcess:
        return NodeProcess(
            self.root / f"n{index}", node_name=f"n{index}", secure=True,
            verify=self.tls.trusting(),
            extra_args=["--store", self.store, "--heartbeat-timeout", HEARTBEAT_TIMEOUT,
                        *self.tls.serve_args(ca=ca)],
        )


@pytest.fixture(scope="module")
def https_node(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> Iterator[NodeProcess]:
    """One node serving HTTPS (``--cert/--key`` only), security off."""
    with NodeProcess(
        tmp_path_factory.mktemp("https-node"), node_name="https",
        verify=tls_files.trusting(),
        extra_args=["--cert", str(tls_files.cert), "--key", str(tls_files.key)],
    ) as node:
        yield node


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> Iterator[TlsCluster]:
    cluster = TlsCluster(tmp_path_factory.mktemp("tls-cluster"), tls_files)
    try:
        cluster.start(2)
        yield cluster
    finally:
        cluster.stop()


def opaque() -> dict[str, str]:
    return {"X-Opaque-Id": f"tls-{uuid.uuid4().hex}"}


def mine(node: NodeProcess, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The ``test:*`` tasks of the whole cluster started with ``headers``, as ``node`` lists them."""
    body = node.get("/_tasks", params={"group_by": "none", "actions": "test:*",
                                       "detailed": "true"}).json()
    assert "node_failures" not in body, body
    return [t for t in body["tasks"] if t["headers"].get("X-Opaque-Id") == headers["X-Opaque-Id"]]


# --------------------------------------------------------------------------------------------
# one node serving HTTPS


def test_a_client_trusting_the_ca_lists_tasks(https_node: NodeProcess, tls_files: TlsFiles) -> None:
    assert https_node.url.startswith("https://127.0.0.1:")
    task_id = https_node.start_sleep(duration="10m")
    try:
        with httpx.Client(base_url=https_node.url, verify=tls_files.trusting()) as client:
            answer = client.get("/_tasks", params={"actions": "test:sleep", "group_by": "none"})
        assert answer.status_code == 200, answer.text
        assert task_id in {f"{t['node']}:{t['id']}" for t in answer.json()["tasks"]}
    finally:
        https_node.post(f"/_tasks/{task_id}/_cancel", params={"wait_for_completion": "true"})


@pytest.mark.parametrize("trusted", ["system CAs", "another CA"])
def test_a_client_not_trusting_the_ca_fails_the_handshake(
    https_node: NodeProcess, tls_files: TlsFiles, trusted: str
) -> None:
    verify = True if trusted == "system CAs" else tls_files.trusting(tls_files.other_ca)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(https_node.url + "/_tasks", verify=verify)


def test_plain_http_to_the_https_port_gets_no_task_data(https_node: NodeProcess) -> None:
    plain = https_node.url.replace("https://", "http://", 1) + "/_tasks"
    try:
        answer = httpx.get(plain)
    except httpx.TransportError:
        return  # the server hung up on bytes that are not a TLS handshake
    assert answer.status_code >= 400
    assert "nodes" not in answer.text and "tasks" not in answer.text


# --------------------------------------------------------------------------------------------
# two secured nodes talking HTTPS to each other


def test_listing_on_one_node_shows_the_tasks_of_the_other(tls_cluster: TlsCluster) -> None:
    a, b = tls_cluster.nodes
    headers = opaque()
    on_b = b.start_sleep(headers=headers, duration="10m")
    try:
        assert [f"{t['node']}:{t['id']}" for t in mine(a, headers)] == [on_b]
        body = a.get("/_tasks", params={"actions": "test:*"}).json()
        assert set(body["nodes"]) >= {b.node_id}
        assert body["nodes"][b.node_id]["transport_address"] == b.url.removeprefix("https://")
        got = a.get(f"/_tasks/{on_b}")  # fetched from B over HTTPS
        assert got.status_code == 200, got.text
        assert got.json()["completed"] is False
        assert got.json()["task"]["headers"]["user.name"] == "admin"
    finally:
        a.post(f"/_tasks/{on_b}/_cancel", params={"wait_for_completion": "true"})


def test_cancel_with_wait_on_one_node_stops_a_tree_running_on_the_other(
    tls_cluster: TlsCluster,
) -> None:
    a, b = tls_cluster.nodes
    headers = opaque()
    # A parent on B with children on both nodes: B streams A's children over HTTPS.
    parent = b.start_sleep(headers=headers, duration="10m", children_per_node=2,
                           stop_delay="200ms")
    a.wait_until(lambda: len(mine(a, headers)) == 5, message="tree did not start on both nodes")
    children = [t for t in mine(a, headers) if t["action"] == "test:sleep[c]"]
    assert sorted(t["node"] for t in children) == sorted([a.node_id, b.node_id] * 2)

    answer = a.post(f"/_tasks/{parent}/_cancel", params={"wait_for_completion": "true"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "node_failures" not in body and "task_failures" not in body, body
    assert body["nodes"][b.node_id]["tasks"][parent]["cancelled"] is True
    # Returned only once the whole tree had stopped, on both nodes.
    assert mine(a, headers) == [] and mine(b, headers) == []
    assert a.get(f"/_tasks/{parent}").json()["completed"] is True


def test_a_node_not_trusting_the_others_reports_them_in_node_failures(
    tls_cluster: TlsCluster, tls_files: TlsFiles
) -> None:
    a, b = tls_cluster.nodes
    # Checks the others' certificates against a CA that did not sign them; they trust its own.
    doubter = tls_cluster.new_node(3, ca=tls_files.other_ca)
    doubter.start()
    try:
        a.wait_until(lambda: len(a.get("/_nodes").json()["nodes"]) == 3,
                     message="the third node did not join")
        answer = doubter.get("/_tasks", params={"actions": "test:*"}, timeout=20)
        assert answer.status_code == 200, answer.text
        failures = answer.json()["node_failures"]
        assert {f["node_id"] for f in failures} == {a.node_id, b.node_id}
        for failure in failures:
            assert failure["type"] == "failed_node_exception"
            assert failure["caused_by"]["type"] == "node_not_connected_exception", failure
            assert "CERTIFICATE_VERIFY_FAILED" in failure["caused_by"]["reason"], failure
        # The others reach it: its certificate is signed by the CA they check against (the list
        # runs a child task on every node it reaches).
        listed = a.get("/_tasks", params={"actions": "cluster:monitor/tasks/lists*"}).json()
        assert "node_failures" not in listed, listed
        assert set(listed["nodes"]) == {a.node_id, b.node_id, doubter.node_id}
    finally:
        doubter.stop()
