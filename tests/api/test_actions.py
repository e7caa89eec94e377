"""``POST /_actions/{action}`` over real HTTP: waiting and background runs, every ``test:sleep`` knob."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from apicheck import (
    SLEEP_PATH,
    assert_es_error,
    live_task,
    live_tasks,
    new_opaque,
    outcome,
    pid_alive,
    tasks_with_opaque,
    wait_gone,
    worker_pids,
)
from nodeproc import NodeProcess, support_pythonpath

EXECUTORS = ["async", "thread", "process"]
# The event loop's timers run on a millisecond clock: a sleep may end up to ~1ms early.
SLACK_MS = 5
BY_USER = {"type": "task_cancelled_exception", "reason": "task cancelled [by user request]"}


class Runner:
    """Runs ``test:sleep`` on a node with one X-Opaque-Id, and cancels what it started at the end."""

    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        self.opaque = new_opaque("act")
        self.started: list[str] = []

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Opaque-Id": self.opaque}

    def wait(self, body: dict[str, Any] | None = None, **params: str) -> httpx.Response:
        """A waiting run (``wait_for_completion`` defaults to true)."""
        return self.node.post(SLEEP_PATH, params=params, json=body or {}, headers=self.headers,
                              timeout=60.0)

    def start(self, **body: Any) -> str:
        """A background run: answers ``{"task": id}`` at once."""
        response = self.node.post(
            SLEEP_PATH, params={"wait_for_completion": "false"}, json=body, headers=self.headers
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert list(answer) == ["task"], answer
        task_id: str = answer["task"]
        self.started.append(task_id)
        return task_id

    def listed(self, task_id: str) -> dict[str, Any]:
        """Wait until the task is registered, and return its detailed info."""
        self.node.wait_until(lambda: live_task(self.node, task_id) is not None, message=task_id)
        task = live_task(self.node, task_id)
        assert task is not None
        return task

    def cancel(self, task_id: str, *, wait: bool = False) -> dict[str, Any]:
        response = self.node.post(
            f"/_tasks/{task_id}/_cancel", params={"wait_for_completion": str(wait).lower()},
            timeout=60.0,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def mine(self) -> list[dict[str, Any]]:
        return tasks_with_opaque(self.node, self.opaque)

    def children(self, parent: str) -> list[dict[str, Any]]:
        return live_tasks(self.node, parent_task_id=parent)

    def cleanup(self) -> None:
        for task_id in self.started:
            self.node.post(f"/_tasks/{task_id}/_cancel", params={"wait_for_completion": "true"},
                           timeout=60.0)
        self.node.wait_until(lambda: not self.mine(), 60.0, "tasks of the test still running")


@pytest.fixture
def runner(shared_node: NodeProcess) -> Iterator[Runner]:
    run = Runner(shared_node)
    try:
        yield run
    finally:
        run.cleanup()


def cpu_by_thread(pid: int) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


def cpu_of(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def new_worker(node: NodeProcess, before: set[int]) -> int:
    """Wait for one new process-executor worker to appear and return its pid."""
    node.wait_until(lambda: bool(worker_pids(node) - before), message="worker process")
    new = worker_pids(node) - before
    assert len(new) == 1, new
    return new.pop()


# ------------------------------------------------------------------------------- waiting runs


@pytest.mark.parametrize("wait", [None, "true", ""], ids=["default", "true", "bare"])
def test_waiting_run_answers_the_response(runner: Runner, wait: str | None) -> None:
    params = {} if wait is None else {"wait_for_completion": wait}
    started = time.monotonic()
    response = runner.wait({"duration": "100ms"}, **params)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.headers["x-elastic-product"] == "Elasticsearch"
    assert response.headers["x-opaque-id"] == runner.opaque
    body = response.json()
    assert list(body) == ["slept_millis", "children"]
    assert body["children"] == 0
    assert 100 - SLACK_MS <= body["slept_millis"] < 10_000
    assert elapsed >= 0.1
    # The task unregisters before the answer is sent.
    assert runner.mine() == []


@pytest.mark.parametrize("executor", EXECUTORS)
def test_waiting_run_on_every_executor(runner: Runner, executor: str) -> None:
    response = runner.wait({"duration": "50ms", "executor": executor})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["children"] == 0 and body["slept_millis"] >= 50 - SLACK_MS


@pytest.mark.parametrize("executor", EXECUTORS)
def test_fail_answers_the_error_after_the_sleep(runner: Runner, executor: str) -> None:
    started = time.monotonic()
    response = runner.wait({"duration": "100ms", "fail": "boom: disk on fire", "executor": executor})
    assert time.monotonic() - started >= 0.1
    error = assert_es_error(response, 500, "exception", "boom: disk on fire")
    assert error["root_cause"] == [{"type": "exception", "reason": "boom: disk on fire"}]
    assert runner.mine() == []


def test_fail_of_a_background_run_is_stored_as_its_error(runner: Runner) -> None:
    task_id = runner.start(duration="0s", fail="kaput")
    body = outcome(runner.node, task_id)
    assert list(body) == ["completed", "task", "error"]
    assert body["error"] == {"type": "exception", "reason": "kaput"}
    assert body["task"]["action"] == "test:sleep"


def test_timeout_cancels_the_waiting_run(runner: Runner) -> None:
    started = time.monotonic()
    response = runner.wait({"duration": "1h"}, timeout="300ms")
    elapsed = time.monotonic() - started
    assert_es_error(
        response, 400, "task_cancelled_exception",
        "task cancelled [timed out after [300ms] waiting for completion]",
    )
    assert 0.3 <= elapsed < 30
    assert runner.mine() == []


def test_timeout_longer_than_the_run_changes_nothing(runner: Runner) -> None:
    response = runner.wait({"duration": "50ms"}, timeout="30s")
    assert response.status_code == 200, response.text
    assert response.json()["slept_millis"] >= 50 - SLACK_MS


def test_timeout_minus_one_waits_without_limit(runner: Runner) -> None:
    response = runner.wait({"duration": "50ms"}, timeout="-1")
    assert response.status_code == 200, response.text


# ---------------------------------------------------------------------------- background runs


def test_background_run_answers_at_once_and_keeps_running(runner: Runner) -> None:
    started = time.monotonic()
    task_id = runner.start(duration="1h")
    assert time.monotonic() - started < 10
    node_part, number = task_id.split(":")
    assert node_part == runner.node.node_id
    assert re.fullmatch(r"\d+", number)
    task = runner.listed(task_id)
    assert task["action"] == "test:sleep" and task["type"] == "transport"
    assert task["cancellable"] is True and task["cancelled"] is False
    assert task["headers"] == {"X-Opaque-Id": runner.opaque}
    assert task["status"]["phase"] == "sleeping"
    got = runner.node.get(f"/_tasks/{task_id}")
    assert got.status_code == 200
    assert got.json()["completed"] is False
    runner.cancel(task_id)
    body = outcome(runner.node, task_id)
    assert body["error"] == BY_USER
    assert "response" not in body


def test_background_run_result_is_served_by_get(runner: Runner) -> None:
    task_id = runner.start(duration="200ms")
    body = outcome(runner.node, task_id)
    assert list(body) == ["completed", "task", "response"]
    assert body["response"]["children"] == 0
    assert body["response"]["slept_millis"] >= 200 - SLACK_MS
    task = body["task"]
    assert f"{task['node']}:{task['id']}" == task_id
    assert task["action"] == "test:sleep"
    assert "cancelled" not in task  # stored task info, as in ES's .tasks
    assert task["running_time_in_nanos"] >= (200 - SLACK_MS) * 1_000_000
    # Served again, the same stored document.
    again = runner.node.get(f"/_tasks/{task_id}")
    assert again.status_code == 200
    assert again.json() == body


# ------------------------------------------------------------------------- test:sleep parameters


def test_duration_defaults_to_a_long_sleep(runner: Runner) -> None:
    task_id = runner.start()
    runner.listed(task_id)
    response = runner.node.get(
        f"/_tasks/{task_id}", params={"wait_for_completion": "true", "timeout": "300ms"}
    )
    assert_es_error(response, 429, "timeout_exception", reason_pattern=r"timed out after \[300ms.*\]")
    assert live_task(runner.node, task_id) is not None


@pytest.mark.parametrize("duration, millis", [("0s", 0), ("250ms", 250), ("1s", 1000)])
def test_duration_is_how_long_it_sleeps(runner: Runner, duration: str, millis: int) -> None:
    started = time.monotonic()
    response = runner.wait({"duration": duration})
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    slept = response.json()["slept_millis"]
    assert millis - SLACK_MS <= slept < millis + 5000
    assert elapsed >= millis / 1000


def test_not_cancellable_task_runs_to_its_end(runner: Runner) -> None:
    task_id = runner.start(duration="1s", cancellable=False)
    task = runner.listed(task_id)
    assert task["cancellable"] is False
    assert "cancelled" not in task
    answer = runner.cancel(task_id)
    assert answer["nodes"] == {}
    [failure] = answer["node_failures"]
    assert failure["caused_by"] == {
        "type": "illegal_argument_exception",
        "reason": f"task [{task_id}] doesn't support cancellation",
    }
    body = outcome(runner.node, task_id)
    assert body["response"]["slept_millis"] >= 1000 - SLACK_MS
    assert "error" not in body


@pytest.mark.parametrize("executor", EXECUTORS)
def test_cancelled_background_run_stores_task_cancelled(runner: Runner, executor: str) -> None:
    task_id = runner.start(duration="1h", executor=executor)
    assert runner.listed(task_id)["cancellable"] is True
    started = time.monotonic()
    answer = runner.cancel(task_id, wait=True)
    assert time.monotonic() - started < 10  # cooperative: well within the 10s default grace
    cancelled = answer["nodes"][task_id.split(":")[0]]["tasks"][task_id]
    assert cancelled["cancelled"] is True
    assert live_task(runner.node, task_id) is None
    assert outcome(runner.node, task_id)["error"] == BY_USER


def test_children_per_node_reports_its_children(runner: Runner) -> None:
    response = runner.wait({"duration": "50ms", "children_per_node": 3})
    assert response.status_code == 200, response.text
    assert response.json()["children"] == 3
    assert runner.mine() == []


def test_children_are_listed_under_their_parent_and_cancelled_with_it(runner: Runner) -> None:
    parent = runner.start(duration="1h", children_per_node=2)
    runner.node.wait_until(lambda: len(runner.children(parent)) == 2, message="children")
    children = runner.children(parent)
    for child in children:
        assert child["action"] == "test:sleep[c]"
        assert child["type"] == "direct"
        assert child["parent_task_id"] == parent
        assert child["cancellable"] is True and child["cancelled"] is False
        assert child["headers"] == {"X-Opaque-Id": runner.opaque}
    parent_task = live_task(runner.node, parent)
    assert parent_task is not None and parent_task["status"]["children"] == 2
    runner.cancel(parent, wait=True)
    assert runner.mine() == []
    assert outcome(runner.node, parent)["error"] == BY_USER


def test_spawn_delay_holds_the_children_back(runner: Runner) -> None:
    started = time.monotonic()
    response = runner.wait({"duration": "0s", "children_per_node": 1, "spawn_delay": "300ms"})
    assert response.status_code == 200, response.text
    assert response.json()["children"] == 1
    assert response.json()["slept_millis"] >= 300 - SLACK_MS
    assert time.monotonic() - started >= 0.3


def test_parent_cancelled_during_spawn_delay_never_starts_children(runner: Runner) -> None:
    parent = runner.start(duration="1h", children_per_node=2, spawn_delay="1h")
    task = runner.listed(parent)
    assert task["status"]["children"] == 0
    assert runner.children(parent) == []
    runner.cancel(parent, wait=True)
    assert runner.mine() == []
    assert outcome(runner.node, parent)["error"] == BY_USER


@pytest.mark.parametrize("executor", ["async", "thread"])
def test_busy_burns_cpu_where_the_executor_runs(runner: Runner, executor: str) -> None:
    pid = runner.node.pid
    before = cpu_by_thread(pid)

    def burned() -> bool:
        now = cpu_by_thread(pid)
        grown = {tid: t - before.get(tid, 0.0) for tid, t in now.items()}
        if executor == "async":
            return grown.get(pid, 0.0) >= 0.3  # the event loop's (main) thread
        return any(delta >= 0.3 for tid, delta in grown.items() if tid != pid)

    task_id = runner.start(duration="1h", busy=True, executor=executor)
    runner.node.wait_until(burned, 30.0, f"busy {executor} task burning no cpu")
    runner.cancel(task_id, wait=True)
    assert outcome(runner.node, task_id)["error"] == BY_USER


def test_busy_process_task_burns_cpu_in_its_worker(runner: Runner) -> None:
    before = worker_pids(runner.node)
    task_id = runner.start(duration="1h", busy=True, executor="process")
    worker = new_worker(runner.node, before)
    runner.node.wait_until(lambda: cpu_of(worker) >= 0.3, 30.0, "worker burning no cpu")
    runner.cancel(task_id, wait=True)
    runner.node.wait_until(lambda: not pid_alive(worker), message="worker still alive")
    assert outcome(runner.node, task_id)["error"] == BY_USER


def test_plain_sleep_burns_no_cpu(runner: Runner) -> None:
    before = cpu_of(runner.node.pid)
    response = runner.wait({"duration": "600ms"})
    assert response.status_code == 200
    assert cpu_of(runner.node.pid) - before < 0.3


@pytest.mark.parametrize("executor", EXECUTORS)
def test_stop_delay_keeps_a_cancelled_task_running(runner: Runner, executor: str) -> None:
    task_id = runner.start(duration="1h", stop_delay="1200ms", executor=executor)
    runner.listed(task_id)
    cancelled_at = time.monotonic()
    runner.cancel(task_id)
    task = live_task(runner.node, task_id)
    assert task is not None, "a cancelled task stays listed while it stops"
    assert task["cancelled"] is True
    body = outcome(runner.node, task_id)
    stopping = time.monotonic() - cancelled_at
    # The delay is spent once, whatever the executor (not once in the body and again around it).
    assert 1.15 <= stopping < 2.3, stopping
    assert body["error"] == BY_USER
    assert body["task"]["running_time_in_nanos"] >= 1_150_000_000


@pytest.mark.parametrize("executor", ["async", "thread"])
def test_ignore_cancel_runs_to_the_end(runner: Runner, executor: str) -> None:
    task_id = runner.start(duration="1s", ignore_cancel=True, executor=executor)
    runner.listed(task_id)
    runner.cancel(task_id)
    task = live_task(runner.node, task_id)
    assert task is not None and task["cancelled"] is True
    body = outcome(runner.node, task_id)
    # It never looked at the cancellation: it slept its whole duration and answered.
    assert body["response"]["slept_millis"] >= 1000 - SLACK_MS


def test_ignore_cancel_still_refuses_children_after_a_cancel(runner: Runner) -> None:
    params: dict[str, Any] = {
        "duration": "1s", "ignore_cancel": True, "children_per_node": 2, "spawn_delay": "800ms",
    }
    # Left alone, the same run starts its children and succeeds.
    response = runner.wait(params)
    assert response.status_code == 200, response.text
    assert response.json()["children"] == 2
    task_id = runner.start(**params)
    runner.listed(task_id)
    runner.cancel(task_id)
    seen_children: list[dict[str, Any]] = []

    def parent_gone() -> bool:
        seen_children.extend(runner.children(task_id))
        return live_task(runner.node, task_id) is None

    runner.node.wait_until(parent_gone, 30.0, "parent still running")
    assert seen_children == []
    assert outcome(runner.node, task_id)["error"] == BY_USER


def test_process_ignoring_cancel_is_killed_after_grace(runner: Runner) -> None:
    before = worker_pids(runner.node)
    task_id = runner.start(duration="1h", executor="process", ignore_cancel=True, grace="500ms")
    worker = new_worker(runner.node, before)
    runner.listed(task_id)
    cancelled_at = time.monotonic()
    runner.cancel(task_id)
    task = live_task(runner.node, task_id)
    assert task is not None and task["cancelled"] is True
    wait_gone(runner.node, task_id)
    elapsed = time.monotonic() - cancelled_at
    assert 0.45 <= elapsed < 8, elapsed  # the task's grace, not the node's 10s default
    runner.node.wait_until(lambda: not pid_alive(worker), message=f"worker {worker} still alive")
    assert worker not in worker_pids(runner.node)
    assert outcome(runner.node, task_id)["error"] == BY_USER


def test_process_that_checks_stops_before_its_grace(runner: Runner) -> None:
    before = worker_pids(runner.node)
    task_id = runner.start(duration="1h", executor="process", grace="1h")
    worker = new_worker(runner.node, before)
    started = time.monotonic()
    runner.cancel(task_id, wait=True)
    assert time.monotonic() - started < 10
    runner.node.wait_until(lambda: not pid_alive(worker), message=f"worker {worker} still alive")
    assert outcome(runner.node, task_id)["error"] == BY_USER


# ---------------------------------------------------------------------------- client goes away


def raw_request(node: NodeProcess, body: dict[str, Any], opaque: str) -> socket.socket:
    """Send a waiting ``test:sleep`` over a bare socket and return the open connection."""
    url = httpx.URL(node.url)
    assert url.host and url.port
    sock = socket.create_connection((url.host, url.port), timeout=30)
    payload = json.dumps(body).encode()
    head = (
        f"POST {SLEEP_PATH} HTTP/1.1\r\nHost: {url.host}\r\nContent-Type: application/json\r\n"
        f"X-Opaque-Id: {opaque}\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    sock.sendall(head.encode() + payload)
    return sock


def test_closed_socket_cancels_the_waiting_task(runner: Runner) -> None:
    sock = raw_request(runner.node, {"duration": "1h", "stop_delay": "300ms"}, runner.opaque)
    try:
        runner.node.wait_until(lambda: len(runner.mine()) == 1, message="task not registered")
        [task] = runner.mine()
        assert task["cancelled"] is False
    finally:
        sock.close()
    task_id = f"{task['node']}:{task['id']}"
    wait_gone(runner.node, task_id)
    # Not a background run: nothing was stored.
    got = runner.node.get(f"/_tasks/{task_id}")
    assert_es_error(got, 404, "resource_not_found_exception",
                    f"task [{task_id}] isn't running and hasn't stored its results")


def test_client_read_timeout_cancels_the_waiting_task(runner: Runner) -> None:
    timeout = httpx.Timeout(30.0, read=0.5)
    with httpx.Client(base_url=runner.node.url, timeout=timeout) as client, pytest.raises(httpx.ReadTimeout):
        client.post(SLEEP_PATH, json={"duration": "1h", "children_per_node": 2}, headers=runner.headers)
    # The parent and its children all stop.
    runner.node.wait_until(lambda: not runner.mine(), 30.0, "tasks still running after disconnect")


@pytest.fixture
def app_node(tmp_path: Path) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path / "app-node", node_name="app", extra_args=["--app", "tw_user_app"],
                     env={"PYTHONPATH": support_pythonpath()}) as node:
        yield node


def test_disconnect_reason_names_the_http_channel(app_node: NodeProcess, tmp_path: Path) -> None:
    record = tmp_path / "reason.txt"
    url = httpx.URL(app_node.url)
    assert url.host and url.port
    opaque = new_opaque("disc")
    sock = socket.create_connection((url.host, url.port), timeout=30)
    payload = json.dumps({"path": str(record)}).encode()
    sock.sendall(
        b"POST /_actions/user:record_cancel HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"X-Opaque-Id: {opaque}\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload
    )
    try:
        app_node.wait_until(lambda: len(tasks_with_opaque(app_node, opaque)) == 1, message="registered")
        local_host, local_port = sock.getsockname()[:2]
    finally:
        sock.close()
    app_node.wait_until(record.exists, 30.0, "the action never saw its cancellation")
    assert record.read_text() == f"http channel [{local_host}:{local_port}] closed"
    app_node.wait_until(lambda: not tasks_with_opaque(app_node, opaque), message="task still running")
