"""The ``store_url`` fixture: each test gets a fresh store, once per database engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from rawstore import sqlite_url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store of this test's own: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "cluster.db")
    # Looked up lazily so that SQLite-only selections never start PostgreSQL.
    return str(request.getfixturevalue("fresh_postgres_url"))
