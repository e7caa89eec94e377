"""``GET /_prometheus/metrics``: running tasks, task endings, cancel latency, store latency."""

from __future__ import annotations

from nodeproc import NodeProcess
from prometheus_client.parser import text_string_to_metric_families


def samples(node: NodeProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = node.get("/_prometheus/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_running_tasks_and_endings_by_action(node: NodeProcess) -> None:
    parent = node.start_sleep(duration="10m", children_per_node=2)
    node.wait_until(lambda: len(node.running()) == 3, message="tree did not start")
    found = samples(node)
    assert value(found, "taskwarden_running_tasks", action="test:sleep") == 1
    assert value(found, "taskwarden_running_tasks", action="test:sleep[c]") == 2
    assert value(found, "taskwarden_tasks_started_total", action="test:sleep[c]") == 2

    node.post(f"/_tasks/{parent}/_cancel", params={"wait_for_completion": "true"})
    ok = node.post("/_actions/test:sleep", json={"duration": "1ms"})
    assert ok.status_code == 200
    failed = node.post("/_actions/test:sleep", json={"duration": "1ms", "fail": "boom"})
    assert failed.status_code == 500

    found = samples(node)
    assert value(found, "taskwarden_running_tasks", action="test:sleep") == 0
    assert value(found, "taskwarden_tasks_cancelled_total", action="test:sleep") == 1
    assert value(found, "taskwarden_tasks_cancelled_total", action="test:sleep[c]") == 2
    assert value(found, "taskwarden_tasks_completed_total", action="test:sleep") == 1
    assert value(found, "taskwarden_tasks_failed_total", action="test:sleep") == 1
    # The three cancelled tasks stopped: one latency observation each, all well under a minute.
    assert value(found, "taskwarden_cancel_latency_seconds_count") == 3
    assert value(found, "taskwarden_cancel_latency_seconds_bucket", le="60.0") == 3


def test_store_operations_are_timed(node: NodeProcess) -> None:
    node.start_sleep(duration="1ms")
    node.wait_until(
        lambda: value(samples(node), "taskwarden_store_operation_seconds_count",
                      operation="store_result") >= 1,
        message="the background task's result was not stored",
    )
    found = samples(node)
    assert value(found, "taskwarden_store_operation_seconds_count", operation="upsert_node") >= 1
    assert value(found, "taskwarden_store_operation_seconds_count", operation="journal_task") >= 1
