"""Background tasks and the store: the job starts while its journal row is written, and a
finished task's outcome is answered from memory while its storage is still in flight.

The store is held up for real: a second SQLite connection takes the file's write lock.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from apicheck import SLEEP_PATH, live_task
from nodeproc import NodeProcess


@contextmanager
def write_lock(data_dir: Path) -> Iterator[None]:
    """Hold the node's SQLite write lock (readers still read, through WAL)."""
    conn = sqlite3.connect(data_dir / "taskwarden.db", timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("COMMIT")
    finally:
        conn.close()


def stored_row(data_dir: Path, task_id: str) -> tuple[int, str | None] | None:
    conn = sqlite3.connect(data_dir / "taskwarden.db", timeout=10)
    try:
        row = conn.execute(
            "SELECT completed, error FROM task_results WHERE task_id = ?", (task_id,)
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else (int(row[0]), row[1])


def background_sleep(url: str) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=60) as client:
        return client.post(SLEEP_PATH, params={"wait_for_completion": "false"},
                           json={"duration": "1h"})


def test_job_starts_while_its_journal_row_waits_and_the_id_comes_after(node: NodeProcess) -> None:
    with ThreadPoolExecutor(1) as pool:
        with write_lock(node.data_dir):
            reply = pool.submit(background_sleep, node.url)
            # Running already, though its journal row cannot be written yet.
            node.wait_until(lambda: len(node.running()) == 1, message="job did not start")
            assert not reply.done()
        response = reply.result(timeout=30)
    assert response.status_code == 200, response.text
    task_id = response.json()["task"]
    assert stored_row(node.data_dir, task_id) == (0, None)
    node.post(f"/_tasks/{task_id}/_cancel", params={"wait_for_completion": "true"})


def test_journal_failure_answers_503_and_stops_the_started_job(node: NodeProcess) -> None:
    # The node gives up on a locked store after its busy timeout (5 s).
    with write_lock(node.data_dir):
        response = background_sleep(node.url)
        assert response.status_code == 503, response.text
        assert response.json()["error"]["type"] == "store_unavailable_exception"
        node.wait_until(lambda: node.running() == [], message="the job kept running")
    assert node.post(SLEEP_PATH, params={"wait_for_completion": "false"},
                     json={"duration": "0s"}).status_code == 200
    # The refused start had no row: there is no outcome to store, and no error about one.
    assert not any("could not store the outcome" in line for line in node.output), node.output


@pytest.mark.parametrize("wait", [True, False])
def test_outcome_is_answered_while_its_storage_is_held_up(node: NodeProcess, wait: bool) -> None:
    task_id = node.start_sleep(duration="1h")
    with write_lock(node.data_dir):
        cancel = node.post(f"/_tasks/{task_id}/_cancel",
                           params={"wait_for_completion": str(wait).lower()})
        assert cancel.status_code == 200, cancel.text
        node.wait_until(lambda: live_task(node, task_id) is None, message="task still registered")
        got = node.get(f"/_tasks/{task_id}", params={"wait_for_completion": "true"})
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["completed"] is True
        assert body["error"]["type"] == "task_cancelled_exception"
        assert "cancelled" not in body["task"]
        assert stored_row(node.data_dir, task_id) == (0, None)
    # Once the store is free again the outcome lands there, and answers are unchanged.
    node.wait_until(lambda: (stored_row(node.data_dir, task_id) or (0,))[0] == 1,
                    message="outcome never stored")
    assert node.get(f"/_tasks/{task_id}").json() == body


def test_stored_outcomes_expire_after_the_retention_period(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node", extra_args=[
        "--results-retention", "1s", "--results-cleanup-interval", "1s",
    ])
    node.start()
    try:
        running = node.start_sleep(duration="1h")
        ended = node.start_sleep(duration="0s")
        assert node.get(f"/_tasks/{ended}", params={"wait_for_completion": "true"}).status_code == 200
        node.wait_until(lambda: node.get(f"/_tasks/{ended}").status_code == 404, timeout=30,
                        message="the outcome was never deleted")
        assert node.get(f"/_tasks/{ended}").json()["error"]["type"] == "resource_not_found_exception"
        # A running task's journal row is not an outcome: it stays.
        assert stored_row(node.data_dir, running) == (0, None)
    finally:
        node.stop()


def test_retention_options_are_checked(tmp_path: Path) -> None:
    for args, flag in ((["--results-retention", "soon"], "--results-retention"),
                       (["--results-cleanup-interval", "10ms"], "--results-cleanup-interval")):
        result = subprocess.run(
            [sys.executable, "-m", "taskwarden", "serve", "--port", "0",
             "--data-dir", str(tmp_path / "bad"), *args],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert result.returncode == 2, result
        assert flag in result.stderr, result.stderr


def test_outcome_is_stored_after_the_store_was_locked_past_its_busy_timeout(
    node: NodeProcess,
) -> None:
    """A store busy for longer than a write waits (5 s) does not lose the outcome: it is retried."""
    task_id = node.start_sleep(duration="1h")
    with write_lock(node.data_dir):
        node.post(f"/_tasks/{task_id}/_cancel")
        node.wait_until(lambda: any("retrying" in line for line in node.output), timeout=30,
                        message="the first write did not fail")
    node.wait_until(lambda: (stored_row(node.data_dir, task_id) or (0,))[0] == 1, timeout=30,
                    message="the outcome was lost")
    assert node.get(f"/_tasks/{task_id}").json()["error"]["type"] == "task_cancelled_exception"
