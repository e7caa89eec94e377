"""Security across two nodes sharing one store: credentials made on one node hold on the other,
a revocation reaches the other within the cache's bound, and children on another node carry the
caller's identity."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from nodeproc import NodeProcess

from taskwarden.security.service import CACHE_TTL_S


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NodeProcess]]:
    root = tmp_path_factory.mktemp("secure-pair")
    store = f"sqlite:///{root / 'cluster.db'}"
    nodes = [
        NodeProcess(root / f"n{i}", node_name=f"n{i}", secure=True,
                    extra_args=["--store", store])
        for i in (1, 2)
    ]
    try:
        for node in nodes:
            node.start()
        nodes[0].wait_until(lambda: len(nodes[0].get("/_nodes").json()["nodes"]) == 2,
                            message="the nodes did not see each other")
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def with_key(node: NodeProcess, encoded: str) -> httpx.Client:
    return httpx.Client(base_url=node.url, timeout=30,
                        headers={"Authorization": f"ApiKey {encoded}"})


def test_children_on_another_node_carry_the_callers_identity(pair: list[NodeProcess]) -> None:
    n1, n2 = pair
    key = n1.post("/_security/api_key", json={"name": "fanout", "role": "manage"}).json()
    with with_key(n1, key["encoded"]) as caller:
        parent = caller.post("/_actions/test:sleep", params={"wait_for_completion": "false"},
                             json={"duration": "10m", "children_per_node": 1}).json()["task"]
    try:
        n2.wait_until(lambda: len(n2.running("test:sleep[c]")) == 2)
        children = n2.running("test:sleep[c]")
        assert {child["parent_task_id"] for child in children} == {parent}
        for child in children:
            assert child["headers"]["user.name"] == "admin"
            assert child["headers"]["api_key.id"] == key["id"]
            assert child["headers"]["user.roles"] == "manage"
    finally:
        n1.post(f"/_tasks/{parent}/_cancel", params={"wait_for_completion": "true"})


def test_a_key_revoked_on_one_node_is_refused_by_the_other(pair: list[NodeProcess]) -> None:
    n1, n2 = pair
    key = n1.post("/_security/api_key", json={"name": "revoked", "role": "monitor"}).json()
    with with_key(n2, key["encoded"]) as on_n2:
        assert on_n2.get("/_tasks").status_code == 200
        n1.client.request("DELETE", "/_security/api_key", json={"ids": [key["id"]]})
        n2.wait_until(lambda: on_n2.get("/_tasks").status_code == 401,
                      timeout=CACHE_TTL_S + 10, message="the other node still took the key")


def test_a_user_made_on_one_node_signs_in_on_the_other(pair: list[NodeProcess]) -> None:
    n1, n2 = pair
    n1.client.put("/_security/user/rita", json={"password": "rita-pass", "roles": ["monitor"]})
    token = base64.b64encode(b"rita:rita-pass").decode()
    answer = httpx.get(n2.url + "/_security/_authenticate", timeout=30,
                       headers={"Authorization": f"Basic {token}"})
    assert answer.status_code == 200 and answer.json()["roles"] == ["monitor"]
