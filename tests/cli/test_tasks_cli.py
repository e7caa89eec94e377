"""``taskwarden tasks ...`` and ``taskwarden cat tasks`` run as real subprocesses against a real node."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import uuid
from typing import Any

import pytest
from nodeproc import NodeProcess
from terminal import exit_code_reading, read_until

from taskwarden.cli.main import task_ids_as_arguments
from taskwarden.cli.render import progress_of

URL_ENV = "TASKWARDEN_URL"


def run_cli(*args: str, env: dict[str, str] | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``python -m taskwarden ARGS`` with a wide, fixed terminal and no inherited server URL."""
    full_env = {k: v for k, v in os.environ.items() if k != URL_ENV}
    full_env.update({"COLUMNS": "200", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "taskwarden", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, check=False)


def new_opaque() -> str:
    return f"cli-{uuid.uuid4().hex[:12]}"


def children_of(node: NodeProcess, parent: str) -> list[str]:
    return [f"{t['node']}:{t['id']}" for t in node.running() if t.get("parent_task_id") == parent]


def stored(node: NodeProcess, task_id: str) -> dict[str, Any] | None:
    """The completed ``GET /_tasks/{id}`` answer, or None while the task still runs."""
    response = node.get(f"/_tasks/{task_id}")
    body: dict[str, Any] = response.json()
    return body if response.status_code == 200 and body.get("completed") else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def without_times(value: Any) -> Any:
    """A listing with the fields that change between two requests taken out."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items()
                if k not in ("running_time_in_nanos", "status")}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def test_list_shows_a_started_task_with_its_opaque_id(node: NodeProcess) -> None:
    opaque = new_opaque()
    task_id = node.start_sleep(headers={"X-Opaque-Id": opaque}, duration="10m")

    result = run_cli("tasks", "list", "--url", node.url, "--actions", "test:*")

    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if task_id in line)
    assert "test:sleep" in row and opaque in row and "transport" in row and "solo" in row


def test_list_detailed_adds_description_and_status(node: NodeProcess) -> None:
    task_id = node.start_sleep(duration="10m")

    result = run_cli("tasks", "list", "--url", node.url, "--actions", "test:*", "--detailed",
                     "--group-by", "none")

    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if task_id in line)
    assert "sleep for a while" in row and '"phase": "sleeping"' in row


def test_group_by_parents_shows_the_children_under_their_parent(node: NodeProcess) -> None:
    parent = node.start_sleep(headers={"X-Opaque-Id": new_opaque()}, duration="10m",
                              children_per_node=2)
    node.wait_until(lambda: len(children_of(node, parent)) == 2, message="children started")
    children = children_of(node, parent)

    result = run_cli("tasks", "list", "--url", node.url, "--actions", "test:*",
                     "--group-by", "parents")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    parent_line = next(i for i, line in enumerate(lines) if f"── {parent} test:sleep " in line)
    parent_column = lines[parent_line].index(parent)
    for child in children:
        child_line = next(i for i, line in enumerate(lines) if f"── {child} test:sleep[c] " in line)
        assert child_line > parent_line
        assert lines[child_line].index(child) > parent_column  # nested one level deeper


def test_json_prints_the_servers_answer(node: NodeProcess) -> None:
    node.start_sleep(headers={"X-Opaque-Id": new_opaque()}, duration="10m", children_per_node=1)
    node.wait_until(lambda: len(node.running()) == 2, message="child started")

    for group_by in ("nodes", "parents", "none"):
        result = run_cli("tasks", "list", "--url", node.url, "--actions", "test:*", "--json",
                         "--group-by", group_by)
        assert result.returncode == 0, result.stderr
        printed = json.loads(result.stdout)
        server = node.get("/_tasks", params={"actions": "test:*", "group_by": group_by}).json()
        assert without_times(printed) == without_times(server)


def test_get_shows_a_finished_background_tasks_error_and_response(node: NodeProcess) -> None:
    failed = node.start_sleep(duration="0s", fail="the disk is full")
    succeeded = node.start_sleep(duration="0s")
    node.wait_until(lambda: stored(node, failed) is not None and stored(node, succeeded) is not None,
                    message="both outcomes stored")

    result = run_cli("tasks", "get", failed, "--url", node.url)
    assert result.returncode == 0, result.stderr
    assert f"task {failed}" in result.stdout
    assert "error: exception: the disk is full" in result.stdout
    assert re.search(r"completed\s+yes", result.stdout)

    result = run_cli("tasks", "get", succeeded, "--url", node.url)
    assert result.returncode == 0, result.stderr
    assert "response:" in result.stdout and '"slept_millis"' in result.stdout

    result = run_cli("tasks", "get", succeeded, "--url", node.url, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == stored(node, succeeded)


def test_get_wait_returns_once_the_task_completes(node: NodeProcess) -> None:
    task_id = node.start_sleep(duration="300ms")

    result = run_cli("tasks", "get", task_id, "--url", node.url, "--wait", "--timeout", "30s",
                     "--json")

    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["completed"] is True and "slept_millis" in body["response"]


def test_cancel_by_id_with_wait_stops_the_whole_tree(node: NodeProcess) -> None:
    parent = node.start_sleep(duration="10m", children_per_node=2)
    node.wait_until(lambda: len(children_of(node, parent)) == 2, message="children started")

    result = run_cli("tasks", "cancel", parent, "--url", node.url, "--wait")

    assert result.returncode == 0, result.stderr
    assert "cancelled 1 task; stopped" in result.stdout and parent in result.stdout
    assert node.running() == []  # --wait returned only after the parent and children ended
    outcome = stored(node, parent)
    assert outcome is not None and outcome["error"]["type"] == "task_cancelled_exception"


def test_cancel_by_filter_prints_json(node: NodeProcess) -> None:
    task_id = node.start_sleep(duration="10m")

    result = run_cli("tasks", "cancel", "--url", node.url, "--actions", "test:sleep", "--json")

    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    cancelled = body["nodes"][node.node_id]["tasks"][task_id]
    assert cancelled["cancelled"] is True
    node.wait_until(lambda: stored(node, task_id) is not None, message="task stopped")


def test_cancel_and_get_of_an_unknown_task_exit_1_with_the_es_error(shared_node: NodeProcess) -> None:
    unknown = f"{shared_node.node_id}:987654"

    result = run_cli("tasks", "cancel", unknown, "--url", shared_node.url)
    assert result.returncode == 1
    assert f"error: resource_not_found_exception: task [{unknown}] is not found" in result.stderr
    assert "Traceback" not in result.stderr

    result = run_cli("tasks", "get", unknown, "--url", shared_node.url)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: resource_not_found_exception: task [{unknown}] isn't running and hasn't stored "
        "its results"
    )


def test_an_unreachable_url_exits_1_without_a_traceback() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = run_cli("tasks", "list", "--url", url)

    assert result.returncode == 1
    assert f"error: cannot reach taskwarden at {url}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_usage_errors_exit_2() -> None:
    for args in (
        ["tasks", "list", "--no-such-option"],
        ["tasks", "list", "--group-by", "sideways"],
        ["tasks", "cancel"],  # no id and no filter: cancelling everything must be asked for
        ["tasks", "watch", "--interval", "soon"],
        ["tasks", "list", "--url", "127.0.0.1:9200"],
    ):
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr


def test_the_url_comes_from_the_environment_and_the_option_wins(shared_node: NodeProcess) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"

    result = run_cli("tasks", "list", "--group-by", "none", env={URL_ENV: shared_node.url})
    assert result.returncode == 0, result.stderr
    assert "cluster:monitor/tasks/lists" in result.stdout

    result = run_cli("tasks", "list", env={URL_ENV: nowhere})
    assert result.returncode == 1 and nowhere in result.stderr

    for args in (["tasks", "list", "--url", shared_node.url], ["tasks", "--url", shared_node.url, "list"]):
        result = run_cli(*args, env={URL_ENV: nowhere})
        assert result.returncode == 0, (args, result.stderr)


def test_watch_a_task_for_two_refreshes(node: NodeProcess) -> None:
    opaque = new_opaque()
    task_id = node.start_sleep(headers={"X-Opaque-Id": opaque}, duration="10m")

    result = run_cli("tasks", "watch", task_id, "--url", node.url, "--count", "2",
                     "--interval", "100ms")

    assert result.returncode == 0, result.stderr
    assert f"task {task_id}" in result.stdout
    assert "test:sleep" in result.stdout and opaque in result.stdout and "sleeping" in result.stdout
    assert "no, running" in result.stdout


def test_watch_ends_with_the_outcome_when_the_task_finishes(node: NodeProcess) -> None:
    task_id = node.start_sleep(duration="300ms")

    result = run_cli("tasks", "watch", task_id, "--url", node.url, "--interval", "50ms")

    assert result.returncode == 0, result.stderr
    assert "response:" in result.stdout and '"slept_millis"' in result.stdout


def test_watch_all_running_tasks(node: NodeProcess) -> None:
    task_id = node.start_sleep(duration="10m")

    result = run_cli("tasks", "watch", "--url", node.url, "--count", "2", "--interval", "100ms")

    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if task_id in line)
    assert "test:sleep" in row and "sleeping" in row
    assert "cluster:monitor/tasks/lists" not in result.stdout  # its own polling is left out


def test_watch_on_a_terminal_stops_on_ctrl_c_with_exit_code_0(node: NodeProcess) -> None:
    task_id = node.start_sleep(duration="10m")
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != URL_ENV}
    env.update({"COLUMNS": "200", "TERM": "xterm"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskwarden", "tasks", "watch", "--url", node.url, "--interval", "100ms"],
        stdin=terminal, stdout=terminal, stderr=terminal, env=env,
    )
    os.close(terminal)
    try:
        shown = read_until(controller, task_id.encode())
        assert task_id.encode() in shown, shown.decode(errors="replace")
        proc.send_signal(signal.SIGINT)
        assert exit_code_reading(controller, proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(controller)


def test_cat_tasks_passes_parameters_through(shared_node: NodeProcess) -> None:
    result = run_cli("cat", "tasks", "-v", "--url", shared_node.url)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[:4] == ["action", "task_id", "parent_task_id", "type"]

    result = run_cli("cat", "tasks", "--url", shared_node.url, "--v", "--h", "action,node",
                     "--format", "json", "--actions", "cluster:monitor/tasks/lists")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows and all(set(row) == {"action", "node"} for row in rows)
    assert {row["action"] for row in rows} == {"cluster:monitor/tasks/lists"}

    result = run_cli("cat", "tasks", "--url", shared_node.url, "--parent-task-id", "bad")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: illegal_argument_exception: malformed task id bad"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"progress": 0.42}, (0.42, "42%")),
        ({"progress": 1.5}, (1.0, "100%")),
        ({"phase": "copying", "done": 3, "total": 12}, (0.25, "3/12 (25%)")),
        ({"total": 100, "created": 20, "updated": 5, "deleted": 0}, (0.25, "25/100 (25%)")),
        ({"elapsed_millis": 1500, "duration_millis": 6000}, (0.25, "1.5s of 6s")),
        ({"elapsed_millis": 0, "duration_millis": 6000}, (0.0, "0s of 6s")),
        ({"phase": "sleeping", "elapsed_millis": 30, "children": 2}, None),  # test:sleep: no duration
        ({"progress": True}, None),
        ({"done": 1, "total": 0}, None),
        ({"total": 10}, None),
        ("halfway", None),
        (None, None),
    ],
)
def test_progress_convention(status: Any, expected: tuple[float, str] | None) -> None:
    progress = progress_of(status)
    assert (None if progress is None else (progress.fraction, progress.label)) == expected


def test_task_ids_starting_with_a_dash_are_arguments(node: NodeProcess) -> None:
    dashed = "-AAAAAAAAAAAAAAAAAAAAA:1"  # node ids are url-safe base64 and may start with "-"
    result = run_cli("tasks", "get", dashed, "--url", node.url)
    assert result.returncode == 1, result.stderr
    assert "resource_not_found_exception" in result.stderr
    listed = run_cli("tasks", "list", "--parent-task-id", dashed, "--url", node.url, "--json")
    assert listed.returncode == 0, listed.stderr


def test_dashed_ids_move_after_the_double_dash() -> None:
    dashed = "-AAAAAAAAAAAAAAAAAAAAA:7"
    assert task_ids_as_arguments(["tasks", "watch", dashed, "--count", "2"]) == [
        "tasks", "watch", "--count", "2", "--", dashed,
    ]
    untouched = ["tasks", "list", "--parent-task-id", dashed]
    assert task_ids_as_arguments(untouched) == untouched
    assert task_ids_as_arguments(["tasks", "get", "--", dashed]) == ["tasks", "get", "--", dashed]
