"""Schema upgrades on a real SQLite file and a real PostgreSQL database: once, in order, kept data."""

from __future__ import annotations

import asyncio

import pytest
from rawstore import is_sqlite, raw_query
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from taskwarden.errors import StoreUnavailableError
from taskwarden.store import ClusterStore, migrations, schema_version

TASK_INFO = {"node": "n1", "id": 1, "type": "transport", "action": "test:sleep"}
SHIPPED = list(migrations.UPGRADES)
"""The real steps: test steps are appended after them, so a fresh store is at len + 1."""
V = len(SHIPPED) + 1


async def add_upgrade_log(conn: AsyncConnection) -> None:
    """A test step: a new table, and one row per time the step ran."""
    await conn.execute(text("CREATE TABLE upgrade_log (note VARCHAR(64))"))
    await conn.execute(text("INSERT INTO upgrade_log (note) VALUES ('ran')"))


async def add_result_note(conn: AsyncConnection) -> None:
    """A second step that changes an existing table: it must run after the first."""
    await conn.execute(text("ALTER TABLE task_results ADD COLUMN note VARCHAR(64)"))
    await conn.execute(text("UPDATE upgrade_log SET note = 'ran, then altered'"))


async def test_an_older_store_is_upgraded_once_while_many_nodes_open_it(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await ClusterStore.open(store_url)
    await first.store_result("n1:1", "n1", TASK_INFO, response={"kept": True})
    secret = await first.cluster_secret()
    await first.close()

    monkeypatch.setattr(migrations, "UPGRADES", [*SHIPPED, add_upgrade_log, add_result_note])
    assert schema_version() == V + 2
    stores = await asyncio.gather(*(ClusterStore.open(store_url) for _ in range(5)))
    try:
        for store in stores:
            assert await store.cluster_secret() == secret
        kept = await stores[0].get_result("n1:1")
        assert kept is not None and kept.response == {"kept": True}
    finally:
        for store in stores:
            await store.close()

    assert await raw_query(store_url, "SELECT note FROM upgrade_log") == [("ran, then altered",)]
    assert await raw_query(
        store_url, "SELECT value FROM cluster_metadata WHERE key = 'schema_version'"
    ) == [(str(V + 2),)]
    assert await raw_query(store_url, "SELECT note FROM task_results") == [(None,)]


async def test_a_fresh_store_starts_at_the_current_version_without_running_steps(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "UPGRADES", [*SHIPPED, add_upgrade_log])
    store = await ClusterStore.open(store_url)
    await store.close()
    assert await raw_query(
        store_url, "SELECT value FROM cluster_metadata WHERE key = 'schema_version'"
    ) == [(str(V + 1),)]
    listed = (
        "SELECT name FROM sqlite_master WHERE name = 'upgrade_log'" if is_sqlite(store_url)
        else "SELECT tablename FROM pg_tables WHERE tablename = 'upgrade_log'"
    )
    assert await raw_query(store_url, listed) == []


async def test_a_failing_step_leaves_the_store_as_it_was(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await ClusterStore.open(store_url)
    await store.close()

    async def broken(conn: AsyncConnection) -> None:
        await add_upgrade_log(conn)
        await conn.execute(text("SELECT no_such_column FROM task_results"))

    monkeypatch.setattr(migrations, "UPGRADES", [*SHIPPED, broken])
    with pytest.raises(StoreUnavailableError):
        await ClusterStore.open(store_url)
    assert await raw_query(
        store_url, "SELECT value FROM cluster_metadata WHERE key = 'schema_version'"
    ) == [(str(V),)]
    monkeypatch.setattr(migrations, "UPGRADES", [*SHIPPED, add_upgrade_log])
    store = await ClusterStore.open(store_url)
    await store.close()
    assert await raw_query(store_url, "SELECT note FROM upgrade_log") == [("ran",)]


async def test_a_store_written_by_a_newer_version_is_refused(store_url: str) -> None:
    store = await ClusterStore.open(store_url)
    await store.close()
    newer = "UPDATE cluster_metadata SET value = '99' WHERE key = 'schema_version'"
    await raw_query(store_url, newer)
    with pytest.raises(StoreUnavailableError, match=r"schema version \[99\]; this node supports"):
        await ClusterStore.open(store_url)


async def test_a_version_1_store_gains_the_credential_tables(store_url: str) -> None:
    """A store written before security existed: its data stays, users and keys tables appear."""
    store = await ClusterStore.open(store_url)
    await store.store_result("n1:1", "n1", TASK_INFO, response={"kept": True})
    await store.close()
    await raw_query(store_url, "DROP TABLE api_keys")
    await raw_query(store_url, "DROP TABLE users")
    await raw_query(store_url, "UPDATE cluster_metadata SET value = '1' WHERE key = 'schema_version'")

    store = await ClusterStore.open(store_url)
    try:
        assert await store.credentials.is_empty()
        kept = await store.get_result("n1:1")
        assert kept is not None and kept.response == {"kept": True}
    finally:
        await store.close()
    assert await raw_query(
        store_url, "SELECT value FROM cluster_metadata WHERE key = 'schema_version'"
    ) == [(str(schema_version()),)]
