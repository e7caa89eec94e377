"""ClusterStore against a real SQLite file and a real PostgreSQL server: round trips, races
between nodes, failures. Tests taking ``store_url`` or ``store`` run once per database."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
from rawstore import is_sqlite, raw_query, sqlite_url

from taskwarden.errors import IllegalArgumentError, StoreUnavailableError, error_from_dict
from taskwarden.store import ClusterStore, NodeRecord, async_store_url, schema_version
from taskwarden.store import engine as store_engine
from taskwarden.store import store as store_module
from taskwarden.tasks.clock import ManualClock

TASK_INFO = {"node": "n1", "id": 1, "type": "transport", "action": "test:sleep"}
CANCELLED = {"type": "task_cancelled_exception", "reason": "task cancelled [by user request]"}
NODE_LEFT = {"type": "node_closed_exception", "reason": "node [n1] left the cluster"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(epoch_millis=1_700_000_000_000)


@pytest.fixture
async def store(store_url: str, clock: ManualClock) -> AsyncIterator[ClusterStore]:
    opened = await ClusterStore.open(store_url, clock=clock)
    yield opened
    await opened.close()


async def test_store_journal_then_result_round_trip(store: ClusterStore) -> None:
    await store.journal_task("n1:1", "n1", TASK_INFO)

    running = await store.get_result("n1:1")
    assert running is not None
    assert (running.completed, running.task, running.response, running.error) == (
        False,
        TASK_INFO,
        None,
        None,
    )
    assert [r.task_id for r in await store.unfinished_tasks("n1")] == ["n1:1"]

    response = {"slept_millis": 10, "children": 0}
    assert await store.store_result("n1:1", "n1", TASK_INFO, response=response) is True

    done = await store.get_result("n1:1")
    assert done is not None
    assert done.to_dict() == {"completed": True, "task": TASK_INFO, "response": response}
    assert list(done.to_dict()) == ["completed", "task", "response"]
    assert await store.unfinished_tasks("n1") == []


async def test_store_error_outcome_body_order(store: ClusterStore) -> None:
    await store.journal_task("n1:2", "n1", TASK_INFO)
    assert await store.store_result("n1:2", "n1", TASK_INFO, error=CANCELLED) is True

    stored = await store.get_result("n1:2")
    assert stored is not None
    body = stored.to_dict()
    assert list(body) == ["completed", "task", "error"]
    assert body["error"] == CANCELLED


async def test_store_running_body_has_only_completed_and_task(store: ClusterStore) -> None:
    await store.journal_task("n1:3", "n1", TASK_INFO)
    stored = await store.get_result("n1:3")
    assert stored is not None
    assert stored.to_dict() == {"completed": False, "task": TASK_INFO}


async def test_store_unknown_result_is_none(store: ClusterStore) -> None:
    assert await store.get_result("n1:404") is None


async def test_store_first_outcome_wins(store: ClusterStore, clock: ManualClock) -> None:
    await store.journal_task("n1:1", "n1", TASK_INFO)
    assert await store.store_result("n1:1", "n1", TASK_INFO, response={"first": True})
    first = await store.get_result("n1:1")

    clock.advance(5)
    assert not await store.store_result("n1:1", "n1", TASK_INFO, error=CANCELLED)
    assert not await store.store_result("n1:1", "n1", {"other": 1}, response={"first": False})

    assert await store.get_result("n1:1") == first


async def test_store_last_task_seq_is_per_node_and_numeric(store: ClusterStore) -> None:
    assert await store.last_task_seq("n1") == 0
    await store.journal_task("n1:9", "n1", TASK_INFO)
    await store.store_result("n1:10", "n1", TASK_INFO, response={})
    await store.journal_task("n2:500", "n2", TASK_INFO)
    assert await store.last_task_seq("n1") == 10
    assert await store.last_task_seq("n2") == 500


async def test_store_result_without_journal_is_inserted(store: ClusterStore) -> None:
    assert await store.store_result("n1:7", "n1", TASK_INFO, response={"ok": 1})
    stored = await store.get_result("n1:7")
    assert stored is not None
    assert stored.completed
    assert stored.response == {"ok": 1}


async def test_store_result_rejects_response_and_error_together(store: ClusterStore) -> None:
    with pytest.raises(ValueError, match="both"):
        await store.store_result("n1:1", "n1", TASK_INFO, response={}, error=CANCELLED)
    assert await store.get_result("n1:1") is None


async def test_store_journal_replaces_completed_row_of_earlier_life(
    store: ClusterStore, clock: ManualClock
) -> None:
    await store.journal_task("n1:1", "n1", TASK_INFO)
    await store.store_result("n1:1", "n1", TASK_INFO, response={"life": 1})

    clock.advance(60)
    second_life = {**TASK_INFO, "action": "test:sleep[c]"}
    await store.journal_task("n1:1", "n1", second_life)

    reborn = await store.get_result("n1:1")
    assert reborn is not None
    assert (reborn.completed, reborn.task, reborn.response) == (False, second_life, None)
    assert reborn.stored_millis == clock.epoch_millis()
    assert await store.store_result("n1:1", "n1", second_life, response={"life": 2})
    final = await store.get_result("n1:1")
    assert final is not None
    assert final.response == {"life": 2}


async def test_store_fail_unfinished_touches_only_that_nodes_unfinished_rows(
    store: ClusterStore, clock: ManualClock
) -> None:
    await store.journal_task("n1:1", "n1", TASK_INFO)
    await store.journal_task("n1:2", "n1", TASK_INFO)
    await store.journal_task("n1:10", "n1", TASK_INFO)
    await store.store_result("n1:2", "n1", TASK_INFO, response={"done": True})
    await store.journal_task("n2:1", "n2", TASK_INFO)
    finished_before = await store.get_result("n1:2")

    clock.advance(1)
    assert await store.fail_unfinished("n1", NODE_LEFT) == ["n1:1", "n1:10"]

    for task_id in ("n1:1", "n1:10"):
        failed = await store.get_result(task_id)
        assert failed is not None
        assert (failed.completed, failed.error, failed.response) == (True, NODE_LEFT, None)
        assert failed.stored_millis == clock.epoch_millis()
    assert await store.get_result("n1:2") == finished_before
    assert [r.task_id for r in await store.unfinished_tasks("n2")] == ["n2:1"]
    assert await store.fail_unfinished("n1", NODE_LEFT) == []


async def test_store_fail_unfinished_from_two_nodes_reports_each_id_once(store_url: str) -> None:
    url = store_url
    first, second = await asyncio.gather(ClusterStore.open(url), ClusterStore.open(url))
    try:
        journaled = {f"dead:{n}" for n in range(1, 101)}
        for task_id in journaled:
            await first.journal_task(task_id, "dead", TASK_INFO)

        by_first, by_second = await asyncio.gather(
            first.fail_unfinished("dead", NODE_LEFT), second.fail_unfinished("dead", NODE_LEFT)
        )

        assert set(by_first).isdisjoint(by_second)
        assert set(by_first) | set(by_second) == journaled
        assert len(by_first) + len(by_second) == len(journaled)
        assert await second.unfinished_tasks("dead") == []
    finally:
        await first.close()
        await second.close()


async def test_store_unfinished_tasks_oldest_first(store: ClusterStore, clock: ManualClock) -> None:
    await store.journal_task("n1:5", "n1", TASK_INFO)
    clock.advance(1)
    await store.journal_task("n1:3", "n1", TASK_INFO)
    assert [r.task_id for r in await store.unfinished_tasks("n1")] == ["n1:5", "n1:3"]


async def test_store_retention_deletes_only_old_completed_results(
    store: ClusterStore, clock: ManualClock
) -> None:
    await store.journal_task("n1:1", "n1", TASK_INFO)
    await store.store_result("n1:1", "n1", TASK_INFO, response={})
    await store.journal_task("n1:2", "n1", TASK_INFO)
    clock.advance(3600)
    cutoff = clock.epoch_millis()
    await store.store_result("n1:3", "n1", TASK_INFO, response={})

    assert await store.delete_results_older_than(cutoff) == 1

    assert await store.get_result("n1:1") is None
    assert await store.get_result("n1:2") is not None
    assert await store.get_result("n1:3") is not None
    assert await store.delete_results_older_than(cutoff) == 0


async def test_store_membership_upsert_list_remove(store: ClusterStore) -> None:
    alpha = NodeRecord(
        node_id="b-node",
        name="alpha",
        http_address="127.0.0.1:9200",
        roles=("data", "master"),
        attributes={"zone": "a"},
        version="0.1.0",
        last_seen_millis=100,
        started_millis=50,
    )
    beta = NodeRecord("a-node", "beta", "127.0.0.1:9201", (), {}, "0.1.0", 100, 60)
    await store.upsert_node(alpha)
    await store.upsert_node(beta)
    assert await store.nodes() == [beta, alpha]

    heartbeat = NodeRecord(**{**alpha.__dict__, "last_seen_millis": 200, "attributes": {}})
    await store.upsert_node(heartbeat)
    assert await store.nodes() == [beta, heartbeat]

    await store.remove_node("a-node")
    await store.remove_node("never-joined")
    assert await store.nodes() == [heartbeat]


async def test_store_concurrent_open_creates_schema_once(store_url: str) -> None:
    stores = await asyncio.gather(*(ClusterStore.open(store_url) for _ in range(5)))
    try:
        secrets = await asyncio.gather(*(s.cluster_secret() for s in stores))
        uuids = await asyncio.gather(*(s.cluster_uuid() for s in stores))
        for s in stores:
            await s.ping()
    finally:
        for s in stores:
            await s.close()

    assert len(set(secrets)) == 1
    assert len(secrets[0]) >= 40
    assert len(set(uuids)) == 1
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", uuids[0])
    version_rows = await raw_query(
        store_url, "SELECT value FROM cluster_metadata WHERE key = 'schema_version'"
    )
    assert version_rows == [(str(schema_version()),)]
    assert len(await raw_query(store_url, "SELECT key FROM cluster_metadata")) == 3
    if is_sqlite(store_url):
        assert (await raw_query(store_url, "PRAGMA journal_mode")) == [("wal",)]
        tables = {row[0] for row in await raw_query(store_url, "SELECT name FROM sqlite_master")}
    else:
        listed = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        tables = {row[0] for row in await raw_query(store_url, listed)}
    assert {"cluster_metadata", "nodes", "task_results"} <= tables


async def test_store_state_survives_close_and_reopen(store_url: str) -> None:
    url = store_url
    first = await ClusterStore.open(url)
    await first.journal_task("n1:1", "n1", TASK_INFO)
    await first.store_result("n1:1", "n1", TASK_INFO, response={"kept": True})
    secret, cluster_uuid = await first.cluster_secret(), await first.cluster_uuid()
    before = await first.get_result("n1:1")
    await first.close()

    # Reopened through the explicit async-driver URL, which names the same store.
    explicit = url.replace("sqlite://", "sqlite+aiosqlite://").replace(
        "postgresql://", "postgresql+asyncpg://"
    )
    reopened = await ClusterStore.open(explicit)
    try:
        assert await reopened.get_result("n1:1") == before
        assert await reopened.cluster_secret() == secret
        assert await reopened.cluster_uuid() == cluster_uuid
    finally:
        await reopened.close()


async def test_store_json_is_stored_compact(store_url: str) -> None:
    opened = await ClusterStore.open(store_url)
    try:
        await opened.journal_task("n1:1", "n1", {"a": 1, "b": [1, 2]})
    finally:
        await opened.close()
    assert await raw_query(store_url, "SELECT task FROM task_results") == [('{"a":1,"b":[1,2]}',)]


@pytest.mark.parametrize("where", ["missing-directory", "parent-is-a-file"])
async def test_store_open_unreachable_path_is_unavailable(tmp_path: Path, where: str) -> None:
    if where == "missing-directory":
        path = tmp_path / "no" / "such" / "dir" / "cluster.db"
    else:
        (tmp_path / "plain-file").write_text("not a directory")
        path = tmp_path / "plain-file" / "cluster.db"

    with pytest.raises(StoreUnavailableError) as caught:
        await ClusterStore.open(sqlite_url(path))

    assert caught.value.http_status == 503
    assert caught.value.to_dict()["type"] == "store_unavailable_exception"
    assert f"folder [{path.parent}] does not exist" in caught.value.reason
    assert not path.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
async def test_store_open_in_read_only_folder_is_unavailable(tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StoreUnavailableError, match="is not writable"):
            await ClusterStore.open(sqlite_url(folder / "cluster.db"))
    finally:
        folder.chmod(0o700)


async def test_store_open_on_a_directory_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="unable to open database file"):
        await ClusterStore.open(sqlite_url(tmp_path))


async def test_store_newer_schema_version_is_refused(store_url: str) -> None:
    opened = await ClusterStore.open(store_url)
    await opened.close()
    await raw_query(
        store_url, "UPDATE cluster_metadata SET value = '99' WHERE key = 'schema_version'"
    )

    with pytest.raises(StoreUnavailableError, match=r"schema version \[99\]"):
        await ClusterStore.open(store_url)


def test_store_urls_are_rewritten_to_async_drivers() -> None:
    assert str(async_store_url("sqlite:////data/c.db")) == "sqlite+aiosqlite:////data/c.db"
    assert str(async_store_url("sqlite+aiosqlite:///c.db")) == "sqlite+aiosqlite:///c.db"
    assert async_store_url("postgresql://u:p@db:5432/tw").drivername == "postgresql+asyncpg"
    assert async_store_url("postgres://db/tw").drivername == "postgresql+asyncpg"
    assert async_store_url("postgresql+asyncpg://db/tw").drivername == "postgresql+asyncpg"


@pytest.mark.parametrize("url", ["mysql://db/tw", "postgresql+psycopg2://db/tw", "not a url"])
def test_store_unsupported_urls_are_illegal_arguments(url: str) -> None:
    with pytest.raises(IllegalArgumentError):
        async_store_url(url)


def test_store_unavailable_error_round_trips_through_its_dict() -> None:
    body = StoreUnavailableError("cluster store [x] is unavailable: locked").to_dict()
    rebuilt = error_from_dict(body, status=503)
    assert isinstance(rebuilt, StoreUnavailableError)
    assert rebuilt.http_status == 503


async def test_store_open_waits_out_a_reader_holding_a_fresh_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "contended.db"
    monkeypatch.setattr(store_engine, "SQLITE_BUSY_TIMEOUT_MILLIS", 20)
    raced = asyncio.Event()

    def spy_is_setup_race(cause: BaseException | None) -> bool:
        is_race = store_engine.is_setup_race(cause)
        if is_race:
            raced.set()
        return is_race

    monkeypatch.setattr(store_module, "is_setup_race", spy_is_setup_race)
    with closing(sqlite3.connect(path, isolation_level=None)) as reader:
        reader.execute("CREATE TABLE unrelated (x)")
        reader.execute("BEGIN")
        reader.execute("SELECT * FROM unrelated").fetchall()
        opening = asyncio.create_task(ClusterStore.open(sqlite_url(path)))
        await asyncio.wait_for(raced.wait(), timeout=30)
        assert not opening.done()
        reader.execute("COMMIT")

    opened = await asyncio.wait_for(opening, timeout=30)
    try:
        await opened.journal_task("n1:1", "n1", TASK_INFO)
        assert (await opened.unfinished_tasks("n1"))[0].task_id == "n1:1"
    finally:
        await opened.close()
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
