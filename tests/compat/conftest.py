"""Fixtures for driving a real node with the official Elasticsearch and OpenSearch clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nodeproc import NodeProcess
from sleeps import Sleeps


@pytest.fixture
def sleeps(shared_node: NodeProcess) -> Iterator[Sleeps]:
    with Sleeps(shared_node) as tracker:
        yield tracker


@pytest.fixture(scope="session")
def shared_node_id(shared_node: NodeProcess) -> str:
    body = shared_node.get("/_nodes").json()
    ids = list(body["nodes"])
    assert len(ids) == 1
    node_id: str = ids[0]
    return node_id
