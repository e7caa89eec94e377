"""``resource_stats`` in detailed task info and the ``_cat/tasks`` resource columns."""

from __future__ import annotations

from typing import Any

from nodeproc import NodeProcess


def detailed(node: NodeProcess, task_id: str) -> dict[str, Any]:
    task: dict[str, Any] = node.get(f"/_tasks/{task_id}").json()["task"]
    return task


def cpu_of(node: NodeProcess, task_id: str) -> int:
    stats = detailed(node, task_id).get("resource_stats") or {}
    return int(stats.get("total", {}).get("cpu_time_in_nanos", 0))


def test_cpu_and_memory_per_executor(node: NodeProcess) -> None:
    ids = {
        executor: node.start_sleep(duration="5m", busy=True, executor=executor)
        for executor in ("thread", "async", "process")
    }
    idle = node.start_sleep(duration="5m")
    for task_id in ids.values():
        # Busy tasks accumulate CPU time; 100 ms of it shows the right task is measured.
        node.wait_until(lambda t=task_id: cpu_of(node, t) > 100_000_000, timeout=30,
                        message=f"no CPU time measured for {task_id}")
    thread_stats = detailed(node, ids["thread"])["resource_stats"]
    assert thread_stats["thread_info"] == {"thread_executions": 1, "active_threads": 1}
    process_stats = detailed(node, ids["process"])["resource_stats"]["total"]
    assert process_stats["memory_in_bytes"] > 1_000_000
    assert cpu_of(node, idle) < cpu_of(node, ids["async"])

    listed = node.get("/_tasks", params={"actions": "test:sleep", "group_by": "none"}).json()
    assert all("resource_stats" not in t for t in listed["tasks"])

    rows = node.get("/_cat/tasks", params={
        "actions": "test:sleep", "detailed": "true", "h": "task_id,cpu_time,memory",
        "format": "json", "time": "ms",
    }).json()
    by_id = {row["task_id"]: row for row in rows}
    assert int(by_id[ids["thread"]]["cpu_time"]) > 100
    assert int(by_id[ids["process"]]["memory"]) > 1_000_000
    assert by_id[ids["thread"]]["memory"] is None
    node.post("/_tasks/_cancel", params={"actions": "test:sleep", "wait_for_completion": "true"})
