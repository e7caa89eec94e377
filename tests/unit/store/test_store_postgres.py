"""ClusterStore behaviour only PostgreSQL has: its setup lock, and an unreachable server.

The tests both databases share live in test_store.py, parametrized over SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from taskwarden.errors import StoreUnavailableError
from taskwarden.store import ClusterStore, migrations
from taskwarden.store import engine as store_engine
from taskwarden.store import store as store_module

OPENERS = 8


def _count_setup_races(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    seen: list[BaseException | None] = []

    def spy_is_setup_race(cause: BaseException | None) -> bool:
        is_race = store_engine.is_setup_race(cause)
        if is_race:
            seen.append(cause)
        return is_race

    monkeypatch.setattr(store_module, "is_setup_race", spy_is_setup_race)
    return seen


async def _open_all_then_close(url: str) -> set[str]:
    stores = await asyncio.gather(*(ClusterStore.open(url) for _ in range(OPENERS)))
    try:
        return set(await asyncio.gather(*(s.cluster_uuid() for s in stores)))
    finally:
        for s in stores:
            await s.close()


async def test_postgres_concurrent_open_serializes_on_the_setup_lock(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    races = _count_setup_races(monkeypatch)

    assert len(await _open_all_then_close(fresh_postgres_url)) == 1
    # Without the advisory lock, openers collide in the catalog nearly every time.
    assert races == []


async def test_postgres_catalog_collisions_without_the_lock_are_retried(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_lock(_conn: AsyncConnection) -> None:
        return None

    monkeypatch.setattr(migrations, "lock_postgres_setup", no_lock)
    races = _count_setup_races(monkeypatch)

    assert len(await _open_all_then_close(fresh_postgres_url)) == 1
    # The collisions PostgreSQL reports (unique violation, duplicate type or table) are all
    # recognised as setup races; which ones occur depends on timing.
    assert all(store_engine.is_setup_race(cause) for cause in races)


async def test_postgres_open_on_a_missing_database_is_unavailable(postgres_url: str) -> None:
    missing = postgres_url.rpartition("/")[0] + "/no_such_database"
    with pytest.raises(StoreUnavailableError, match="no_such_database"):
        await ClusterStore.open(missing)


async def test_postgres_open_with_no_server_listening_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        url = f"postgresql://postgres@127.0.0.1:{port}/tw"
        with pytest.raises(StoreUnavailableError) as caught:
            await ClusterStore.open(url)
    assert caught.value.http_status == 503
    assert f"127.0.0.1:{port}/tw" in caught.value.reason
