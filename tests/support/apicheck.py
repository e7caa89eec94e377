"""Checks shared by the REST tests: ES error envelopes, task lookups, worker processes."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import psutil
from nodeproc import NodeProcess

SLEEP_PATH = "/_actions/test:sleep"
LIST_ACTION = "cluster:monitor/tasks/lists"


def new_opaque(prefix: str = "t") -> str:
    """A unique ``X-Opaque-Id``: every task a request starts carries it."""
    return f"{prefix}-{uuid.uuid4().hex}"


def assert_es_error(
    response: httpx.Response,
    status: int,
    error_type: str,
    reason: str | None = None,
    *,
    reason_pattern: str | None = None,
    error_trace: bool = False,
) -> dict[str, Any]:
    """The ES error envelope, exactly: ``{"error": {"root_cause", "type", "reason", ...}, "status"}``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert response.headers.get("x-elastic-product") == "Elasticsearch"
    body = response.json()
    assert list(body) == ["error", "status"], body
    assert body["status"] == status
    error: dict[str, Any] = body["error"]
    assert list(error)[:3] == ["root_cause", "type", "reason"], error
    assert error["type"] == error_type, error
    if reason is not None:
        assert error["reason"] == reason, error
    if reason_pattern is not None:
        assert re.fullmatch(reason_pattern, error["reason"]), error
    root_cause = error["root_cause"]
    assert isinstance(root_cause, list) and len(root_cause) == 1, error
    assert {"type", "reason"} <= set(root_cause[0]), root_cause
    assert "caused_by" not in root_cause[0] and "stack_trace" not in root_cause[0]
    if error_trace:
        trace = error.get("stack_trace")
        assert isinstance(trace, str) and "Traceback" in trace, error
        assert list(error)[-1] == "stack_trace", error
    else:
        assert "stack_trace" not in json.dumps(body), body
    return error


def task_key(task: dict[str, Any]) -> str:
    return f"{task['node']}:{task['id']}"


def live_tasks(node: NodeProcess, **params: str) -> list[dict[str, Any]]:
    """Every registered task (detailed, flat list), as ``GET /_tasks`` reports them."""
    response = node.get("/_tasks", params={"group_by": "none", "detailed": "true", **params})
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


def tasks_with_opaque(node: NodeProcess, opaque: str) -> list[dict[str, Any]]:
    return [t for t in live_tasks(node) if t["headers"].get("X-Opaque-Id") == opaque]


def live_task(node: NodeProcess, task_id: str) -> dict[str, Any] | None:
    """The running task with this id, or None once it has unregistered."""
    for task in live_tasks(node):
        if task_key(task) == task_id:
            return task
    return None


def only_list_tasks_remain(node: NodeProcess) -> bool:
    """True when ``GET /_tasks`` shows nothing but the listing request's own tasks."""
    return all(t["action"].startswith(LIST_ACTION) for t in live_tasks(node))


def wait_gone(node: NodeProcess, task_id: str, timeout: float = 30.0) -> None:
    node.wait_until(lambda: live_task(node, task_id) is None, timeout, f"task {task_id} still running")


def outcome(node: NodeProcess, task_id: str, timeout: str = "60s") -> dict[str, Any]:
    """``GET /_tasks/{id}?wait_for_completion=true``: the stored result of a finished task."""
    response = node.get(f"/_tasks/{task_id}", params={"wait_for_completion": "true", "timeout": timeout})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["completed"] is True, body
    return body


def worker_pids(node: NodeProcess) -> set[int]:
    """Pids of the node's process-executor workers.

    The forkserver and the resource tracker are the node's own children; workers are forked by
    the forkserver, so they are the node's grandchildren.
    """
    try:
        descendants = psutil.Process(node.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return set()
    pids: set[int] = set()
    for proc in descendants:
        try:
            if proc.ppid() != node.pid and proc.status() != psutil.STATUS_ZOMBIE:
                pids.add(proc.pid)
        except psutil.NoSuchProcess:
            continue
    return pids


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
