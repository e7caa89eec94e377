"""ResultRetention against a real SQLite store: what expires, what stays, and its own schedule."""

from __future__ import annotations

import asyncio
from pathlib import Path

from taskwarden.cluster.retention import ResultRetention
from taskwarden.store import ClusterStore
from taskwarden.tasks.clock import ManualClock

INFO = {"node": "n1", "id": 1, "type": "transport", "action": "test:sleep"}
DAY_S = 24 * 3600.0


async def open_store(tmp_path: Path, clock: ManualClock) -> ClusterStore:
    return await ClusterStore.open(f"sqlite:///{tmp_path / 'store.db'}", clock=clock)


async def test_only_completed_results_older_than_the_retention_go(tmp_path: Path) -> None:
    clock = ManualClock()
    store = await open_store(tmp_path, clock)
    try:
        await store.journal_task("n1:1", "n1", INFO)  # still running: never expires
        await store.store_result("n1:2", "n1", INFO, response={"done": 2})
        clock.advance(6 * DAY_S)
        await store.store_result("n1:3", "n1", INFO, response={"done": 3})
        retention = ResultRetention(store, clock, retention_s=7 * DAY_S, interval_s=3600)
        assert await retention.clean_once() == 0
        clock.advance(2 * DAY_S)
        assert await retention.clean_once() == 1
        assert await store.get_result("n1:2") is None
        assert (await store.get_result("n1:3")) is not None
        running = await store.get_result("n1:1")
        assert running is not None and not running.completed
    finally:
        await store.close()


async def test_cleanup_runs_on_its_own_until_stopped(tmp_path: Path) -> None:
    clock = ManualClock()
    store = await open_store(tmp_path, clock)
    try:
        await store.store_result("n1:1", "n1", INFO, response=None)
        clock.advance(2.0)
        retention = ResultRetention(store, clock, retention_s=1.0, interval_s=0.05)
        retention.start()
        async with asyncio.timeout(10):
            # Nothing signals a deletion: the store itself is polled, within a deadline.
            while await store.get_result("n1:1") is not None:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        await retention.stop()
        await store.store_result("n1:2", "n1", INFO, response=None)
        clock.advance(2.0)
        await asyncio.sleep(0.3)  # several intervals: a stopped cleanup deletes nothing more
        assert await store.get_result("n1:2") is not None
    finally:
        await store.close()


async def test_negative_retention_keeps_everything(tmp_path: Path) -> None:
    clock = ManualClock()
    store = await open_store(tmp_path, clock)
    try:
        retention = ResultRetention(store, clock, retention_s=-1, interval_s=0.01)
        retention.start()
        await store.store_result("n1:1", "n1", INFO, response=None)
        clock.advance(365 * DAY_S)
        await asyncio.sleep(0.1)
        assert await store.get_result("n1:1") is not None
        await retention.stop()
    finally:
        await store.close()
