"""Bounds on what one node takes on: actions at once, children of one task, requests at once.
Beyond them a 429 ``es_rejected_execution_exception``, and the node serves again once below."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from apicheck import SLEEP_PATH, assert_es_error
from nodeproc import NodeProcess

REJECTED = "es_rejected_execution_exception"


@pytest.fixture
def limited(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path / "node", extra_args=list(request.param)) as node:
        yield node


@pytest.mark.parametrize("limited", [["--max-tasks", "3"]], indirect=True)
def test_actions_beyond_the_node_limit_are_refused(limited: NodeProcess) -> None:
    started = [limited.start_sleep(duration="1h") for _ in range(3)]
    refused = limited.post(SLEEP_PATH, params={"wait_for_completion": "false"},
                           json={"duration": "1h"})
    assert_es_error(refused, 429, REJECTED,
                    reason_pattern=r".*tasks are running on this node, its limit is \[3\]")
    assert len(limited.running()) == 3  # listing is not an action: still served
    limited.post(f"/_tasks/{started[0]}/_cancel", params={"wait_for_completion": "true"})
    assert limited.post(SLEEP_PATH, params={"wait_for_completion": "false"},
                        json={"duration": "0s"}).status_code == 200
    for task_id in started[1:]:
        limited.post(f"/_tasks/{task_id}/_cancel", params={"wait_for_completion": "true"})


@pytest.mark.parametrize("limited", [["--max-children-per-task", "2"]], indirect=True)
def test_children_beyond_the_per_task_limit_fail_the_parent(limited: NodeProcess) -> None:
    response = limited.post(SLEEP_PATH, json={"duration": "0s", "children_per_node": 3})
    body = response.json()
    assert response.status_code == 429, body
    assert body["error"]["type"] == REJECTED
    assert "already has [2] children running on this node" in body["error"]["reason"]
    assert limited.running() == []
    ok = limited.post(SLEEP_PATH, json={"duration": "0s", "children_per_node": 2})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("limited", [["--max-concurrent-requests", "2"]], indirect=True)
def test_requests_beyond_the_concurrency_limit_are_refused(limited: NodeProcess) -> None:
    task_id = limited.start_sleep(duration="1h")

    def wait_on_task() -> str:
        """A request that stays in progress for 3 s (tried again while the node is full)."""
        with httpx.Client(base_url=limited.url, timeout=60) as client:
            deadline = time.monotonic() + 20
            while True:
                error = client.get(f"/_tasks/{task_id}", params={
                    "wait_for_completion": "true", "timeout": "3s"}).json()["error"]["type"]
                if error != REJECTED or time.monotonic() > deadline:
                    return str(error)

    with ThreadPoolExecutor(2) as pool:
        waits = [pool.submit(wait_on_task) for _ in range(2)]
        deadline = time.monotonic() + 20
        refused = limited.get("/")
        while refused.status_code != 429 and time.monotonic() < deadline:
            refused = limited.get("/")
        assert_es_error(refused, 429, REJECTED,
                        reason_pattern=r".*requests in progress on this node, its limit is \[2\]")
        # Each wait ends by its own timeout (ES answers that with a 429 timeout_exception).
        assert [w.result(timeout=30) for w in waits] == ["timeout_exception"] * 2
    assert limited.get("/").status_code == 200
    limited.post(f"/_tasks/{task_id}/_cancel", params={"wait_for_completion": "true"})
