"""Fixtures for the cluster tests: three nodes sharing one SQLite file or one PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterproc import Cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """A fresh cluster per test, for tests that kill or restart nodes."""
    store = None
    if request.param == "postgresql":
        store = request.getfixturevalue("postgres_server").create_database()
    c = Cluster(tmp_path, store)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """One cluster per store engine for a module's tests that leave every node running (they
    cancel what they start): a shared SQLite file, or a database on the throwaway PostgreSQL."""
    store = None
    if request.param == "postgresql":
        store = request.getfixturevalue("postgres_server").create_database()
    c = Cluster(tmp_path_factory.mktemp("cluster"), store)
    try:
        c.start()
        yield c
    finally:
        c.stop()
