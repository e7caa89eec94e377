"""A node's Prometheus metrics (``GET /_prometheus/metrics``), all prefixed ``taskwarden_``.

Task counts are plain counters bumped on the hot paths and turned into metric families only when
scraped; histograms (cancel latency, store operations) are observed as events happen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from taskwarden.errors import TaskCancelledError, TaskwardenError
from taskwarden.tasks import Task, TaskManager

__all__ = ["NodeMetrics"]

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
)
_ENDINGS = ("completed", "failed", "cancelled")


class NodeMetrics:
    """Counts what this node's tasks do; the runner, cluster and store report into it."""

    def __init__(self, manager: TaskManager) -> None:
        self._manager = manager
        self.registry = CollectorRegistry(auto_describe=True)
        self._started: Counter[str] = Counter()
        self._ended: Counter[tuple[str, str]] = Counter()
        self._fan_out_failures: Counter[str] = Counter()
        self.cancel_latency = Histogram(
            "taskwarden_cancel_latency_seconds",
            "Time from a task's cancellation until it stopped (unregistered)",
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.store_latency = Histogram(
            "taskwarden_store_operation_seconds",
            "Duration of cluster store operations", ["operation"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.registry.register(_TaskCollector(self))
        manager.add_unregister_listener(self._on_unregister)

    def task_started(self, task: Task) -> None:
        self._started[task.action] += 1

    def task_ended(self, task: Task, error: TaskwardenError | None) -> None:
        if error is None:
            ending = "completed"
        elif isinstance(error, TaskCancelledError):
            ending = "cancelled"
        else:
            ending = "failed"
        self._ended[(task.action, ending)] += 1

    def fan_out_failure(self, node_id: str) -> None:
        self._fan_out_failures[node_id] += 1

    def store_operation(self, operation: str, seconds: float) -> None:
        self.store_latency.labels(operation).observe(seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

    def _on_unregister(self, task: Task) -> None:
        cancelled = task.cancelled_at_nanos
        if cancelled is not None:
            stopped = self._manager.clock.monotonic_nanos()
            self.cancel_latency.observe(max(0, stopped - cancelled) / 1e9)


class _TaskCollector(Collector):
    """Running tasks and task counters, read when scraped."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        running = GaugeMetricFamily(
            "taskwarden_running_tasks", "Tasks registered on this node now", labels=["action"]
        )
        for action, count in sorted(Counter(t.action for t in m._manager).items()):
            running.add_metric([action], count)
        yield running
        started = CounterMetricFamily(
            "taskwarden_tasks_started", "Action tasks started", labels=["action"]
        )
        for action, count in sorted(m._started.items()):
            started.add_metric([action], count)
        yield started
        for ending in _ENDINGS:
            family = CounterMetricFamily(
                f"taskwarden_tasks_{ending}", f"Action tasks {ending}", labels=["action"]
            )
            for (action, kind), count in sorted(m._ended.items()):
                if kind == ending:
                    family.add_metric([action], count)
            yield family
        failures = CounterMetricFamily(
            "taskwarden_fan_out_failures",
            "Requests to other nodes that failed or timed out, by node", labels=["node"],
        )
        for node_id, count in sorted(m._fan_out_failures.items()):
            failures.add_metric([node_id], count)
        yield failures
