"""Shared fixtures: real taskwarden nodes started as subprocesses on free loopback ports."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "support"))

from nodeproc import NodeProcess


@pytest.fixture(scope="session")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One node for the whole session: tests that only read or clean up after themselves."""
    node = NodeProcess(tmp_path_factory.mktemp("shared-node"), node_name="shared")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    """A fresh node of its own for one test."""
    proc = NodeProcess(tmp_path / "node", node_name="solo")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
