"""A node's life over real processes: restarts, SIGTERM, SIGKILL, the data folder, the command line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from apicheck import (
    SLEEP_PATH,
    assert_es_error,
    live_task,
    outcome,
    pid_alive,
    worker_pids,
)
from nodeproc import NodeProcess

SUPPORT = Path(__file__).parent.parent / "support"
EXECUTORS = ["async", "thread", "process"]
SHUTTING_DOWN = {"type": "task_cancelled_exception", "reason": "task cancelled [node shutting down]"}
CLI_FLAGS = [
    "--host", "--port", "--data-dir", "--node-name", "--cluster-name", "--store", "--app", "--attr",
    "--no-test-actions", "--grace", "--results-retention", "--results-cleanup-interval",
    "--max-tasks", "--max-children-per-task", "--max-concurrent-requests", "--security",
    "--admin-password", "--cert", "--key", "--ca-cert",
]


class Nodes:
    """Starts nodes on one data folder, one life after another, and stops whatever still runs."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.lives: list[NodeProcess] = []

    def start(self, **kwargs: Any) -> NodeProcess:
        node = NodeProcess(self.data_dir, node_name="life", **kwargs)
        node.start()
        self.lives.append(node)
        return node

    def stop_all(self) -> None:
        for node in self.lives:
            node.stop()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    lives = Nodes(tmp_path / "data")
    try:
        yield lives
    finally:
        lives.stop_all()


def app_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(SUPPORT), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def task_number(task_id: str) -> int:
    return int(task_id.rsplit(":", 1)[1])


def start_all_executors(node: NodeProcess) -> dict[str, str]:
    """One background ``test:sleep`` of an hour per executor, all registered and running."""
    before = worker_pids(node)
    ids = {executor: node.start_sleep(duration="1h", executor=executor) for executor in EXECUTORS}
    node.wait_until(lambda: all(live_task(node, t) is not None for t in ids.values()), message="tasks")
    node.wait_until(lambda: bool(worker_pids(node) - before), message="process worker")
    return ids


def assert_stored_info(body: dict[str, Any], task_id: str) -> None:
    task = body["task"]
    assert f"{task['node']}:{task['id']}" == task_id
    assert task["action"] == "test:sleep"
    assert "cancelled" not in task, task  # stored task info carries no "cancelled", as in ES


# ------------------------------------------------------------------------------------ restarts


def test_results_survive_a_restart(nodes: Nodes) -> None:
    first = nodes.start()
    done = first.start_sleep(duration="50ms")
    failed = first.start_sleep(duration="0s", fail="kaput")
    before = {task_id: outcome(first, task_id) for task_id in (done, failed)}
    assert before[done]["response"]["slept_millis"] >= 45
    assert before[failed]["error"] == {"type": "exception", "reason": "kaput"}
    assert first.terminate() == 0

    second = nodes.start()
    for task_id, body in before.items():
        response = second.get(f"/_tasks/{task_id}")
        assert response.status_code == 200, response.text
        assert response.json() == body
        assert_stored_info(response.json(), task_id)


def test_node_id_is_kept_in_the_data_folder(nodes: Nodes, tmp_path: Path) -> None:
    first = nodes.start()
    node_id = first.node_id
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", node_id)
    assert (nodes.data_dir / "node_id").read_text().strip() == node_id
    assert first.terminate() == 0

    second = nodes.start()
    assert second.node_id == node_id
    assert second.start_sleep(duration="0s").startswith(node_id + ":")

    other = NodeProcess(tmp_path / "elsewhere", node_name="other")
    other.start()
    try:
        assert other.node_id != node_id
    finally:
        other.stop()


def test_task_ids_after_a_restart_do_not_collide_with_stored_ones(nodes: Nodes) -> None:
    first = nodes.start()
    old = [first.start_sleep(duration="0s", fail=f"old {n}") for n in range(3)]
    for n, task_id in enumerate(old):
        assert outcome(first, task_id)["error"]["reason"] == f"old {n}"
    assert first.terminate() == 0

    second = nodes.start()
    new = [second.start_sleep(duration="0s") for _ in range(3)]
    assert min(task_number(t) for t in new) > max(task_number(t) for t in old)
    for task_id in new:
        assert "response" in outcome(second, task_id)
    # The old results are still the old ones, not overwritten by a new life of the same id.
    for n, task_id in enumerate(old):
        assert outcome(second, task_id)["error"] == {"type": "exception", "reason": f"old {n}"}


# -------------------------------------------------------------------------------------- SIGTERM


def test_sigterm_cancels_running_background_tasks(nodes: Nodes) -> None:
    first = nodes.start()
    ids = start_all_executors(first)
    workers = worker_pids(first)
    assert first.terminate() == 0
    output = "".join(first.output)
    assert "received SIGTERM" in output
    for pid in workers:
        first.wait_until(lambda pid=pid: not pid_alive(pid), message=f"worker {pid} outlived its node")

    second = nodes.start()
    for task_id in ids.values():
        body = second.get(f"/_tasks/{task_id}").json()
        assert body["completed"] is True
        assert body["error"] == SHUTTING_DOWN
        assert "response" not in body
        assert_stored_info(body, task_id)


def test_sigterm_answers_a_waiting_client(nodes: Nodes) -> None:
    node = nodes.start()
    with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=node.url, timeout=60.0) as client:
        waiting = pool.submit(client.post, SLEEP_PATH, json={"duration": "1h"},
                              headers={"X-Opaque-Id": "waiting-client"})
        node.wait_until(
            lambda: any(t["headers"].get("X-Opaque-Id") == "waiting-client" for t in node.running()),
            message="waiting task",
        )
        assert node.proc is not None
        node.proc.send_signal(signal.SIGTERM)
        response = waiting.result(60)
    assert_es_error(response, 400, "task_cancelled_exception", "task cancelled [node shutting down]")
    assert node.proc.wait(60) == 0


# -------------------------------------------------------------------------------------- SIGKILL


def test_sigkill_leaves_tasks_that_the_next_life_reports_failed(nodes: Nodes) -> None:
    first = nodes.start()
    node_id = first.node_id
    ids = start_all_executors(first)
    workers = worker_pids(first)
    first.kill()
    # A worker notices its node is gone and stops too.
    for pid in workers:
        first.wait_until(lambda pid=pid: not pid_alive(pid), 30.0, f"worker {pid} outlived its node")

    second = nodes.start()
    assert "marked 3 unfinished background tasks" in "".join(second.output)
    expected = {
        "type": "node_closed_exception",
        "reason": f"node [life][{node_id}] stopped before the task finished (it crashed or was "
                  "killed); the task's outcome is unknown",
    }
    for task_id in ids.values():
        response = second.get(f"/_tasks/{task_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["completed"] is True
        assert body["error"] == expected
        assert_stored_info(body, task_id)
        assert live_task(second, task_id) is None
    fresh = second.start_sleep(duration="0s")
    assert task_number(fresh) > max(task_number(t) for t in ids.values())
    assert "response" in outcome(second, fresh)


# -------------------------------------------------------------------------------- command line


def test_no_test_actions_hides_test_sleep(nodes: Nodes) -> None:
    node = nodes.start(extra_args=["--no-test-actions"])
    for action in ("test:sleep", "test:sleep[c]"):
        response = node.post(f"/_actions/{action}", json={"duration": "0s"})
        assert_es_error(response, 404, "resource_not_found_exception",
                        f"action [{action}] is not registered on this node")
    assert node.get("/").status_code == 200
    assert node.running() == []


def test_app_module_and_node_attributes(nodes: Nodes) -> None:
    node = nodes.start(
        extra_args=["--app", "tw_user_app", "--attr", "zone=eu-1", "--attr", "rack=r7"],
        env=app_env(),
    )
    response = node.post("/_actions/user:greet", json={"name": "ada", "times": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["greeting"] == "hello ada hello ada"
    assert re.fullmatch(re.escape(node.node_id) + r":\d+", body["task"])

    background = node.post("/_actions/user:greet", params={"wait_for_completion": "false"},
                           json={"name": "bob"})
    assert background.status_code == 200, background.text
    stored = outcome(node, background.json()["task"])
    assert stored["response"]["greeting"] == "hello bob"
    assert stored["task"]["action"] == "user:greet"
    assert stored["task"]["description"] == "Greet someone (a user action loaded with --app)."

    assert_es_error(node.post("/_actions/user:greet", json={"name": "x", "bogus": 1}), 400,
                    "illegal_argument_exception", "action [user:greet] does not support parameter [bogus]")
    assert_es_error(node.post("/_actions/user:greet", json={}), 400,
                    "illegal_argument_exception", "action [user:greet] requires parameter [name]")
    # Test actions stay available next to the app's.
    assert node.post(SLEEP_PATH, json={"duration": "0s"}).status_code == 200

    info = node.get("/_nodes").json()["nodes"]
    [entry] = info.values()
    assert entry["attributes"] == {"zone": "eu-1", "rack": "r7"}
    assert entry["name"] == "life"


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb")
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=timeout,
                          check=False)


def test_app_module_that_does_not_exist_stops_the_start(tmp_path: Path) -> None:
    result = run_cli(sys.executable, "-m", "taskwarden", "serve", "--port", "0",
                     "--data-dir", str(tmp_path / "d"), "--app", "no_such_module_anywhere")
    assert result.returncode != 0
    assert "no_such_module_anywhere" in result.stdout + result.stderr


def test_attr_without_value_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(sys.executable, "-m", "taskwarden", "serve", "--port", "0",
                     "--data-dir", str(tmp_path / "d"), "--attr", "novalue")
    assert result.returncode == 2
    assert "expected KEY=VALUE" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--cert", "{pem}"], "--cert and --key go together"),
     (["--ca-cert", "{pem}"], "give this node's --cert and --key too")],
)
def test_tls_flags_that_cannot_work_alone_are_usage_errors(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    pem = tmp_path / "some.pem"
    pem.write_text("not read before the check\n")
    result = run_cli(sys.executable, "-m", "taskwarden", "serve", "--port", "0",
                     "--data-dir", str(tmp_path / "d"), *(f.format(pem=pem) for f in flags))
    assert result.returncode == 2
    assert message in " ".join((result.stdout + result.stderr).split()).replace("│", "")


def test_python_dash_m_help_lists_serve() -> None:
    result = run_cli(sys.executable, "-m", "taskwarden", "--help")
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout


@pytest.mark.parametrize("how", ["python -m", "console script"])
def test_serve_help_lists_the_flags(how: str) -> None:
    if how == "python -m":
        command = [sys.executable, "-m", "taskwarden"]
    else:
        script = Path(sys.executable).parent / "taskwarden"
        assert script.exists(), script
        command = [str(script)]
    result = run_cli(*command, "serve", "--help")
    assert result.returncode == 0, result.stderr
    for flag in CLI_FLAGS:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", result.stdout), (flag, result.stdout)
