"""``GET /_nodes/hot_threads`` over real HTTP: Elasticsearch's text layout, task labels, params."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from nodeproc import NodeProcess

USAGE = re.compile(
    r"^   \s*\d+\.\d% \[cpu=\d+\.\d%, other=\d+\.\d%\] \(\S+ out of (\S+)\) cpu usage by thread '(.+)'$"
)


@pytest.fixture(scope="module")
def busy_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, dict[str, str]]]:
    """A node burning CPU in a thread task, an asyncio task and a worker-process task."""
    node = NodeProcess(tmp_path_factory.mktemp("hot"), node_name="hot")
    node.start()
    ids = {
        executor: node.start_sleep(duration="5m", busy=True, executor=executor)
        for executor in ("thread", "async", "process")
    }
    node.wait_until(lambda: len(node.running("test:sleep")) == 3, message="busy tasks not running")
    # A worker process starts after its task registers: wait until it reports its memory.
    node.wait_until(
        lambda: "memory_in_bytes" in (
            node.get(f"/_tasks/{ids['process']}").json()["task"].get("resource_stats") or {}
        ).get("total", {}),
        timeout=60, message="worker process not started",
    )
    try:
        yield node, ids
    finally:
        node.post("/_tasks/_cancel", params={"actions": "test:sleep", "wait_for_completion": "true"})
        node.stop()


def report(node: NodeProcess, path: str = "/_nodes/hot_threads", **params: str) -> str:
    response = node.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_layout_header_usage_lines_and_snapshots(
    busy_node: tuple[NodeProcess, dict[str, str]],
) -> None:
    node, _ = busy_node
    text = report(node, threads="10", snapshots="5")
    lines = text.split("\n")
    node_id = node.node_id
    assert lines[0].startswith(f"::: {{hot}}{{{node_id}}}{{{node_id}}}{{127.0.0.1}}{{127.0.0.1}}")
    assert re.fullmatch(
        r"   Hot threads at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z, interval=500ms, "
        r"busiestThreads=10, ignoreIdleThreads=true:", lines[1]
    )
    assert lines[2] == "   "
    usages = [m for m in map(USAGE.match, lines) if m]
    assert usages and all(m.group(1) == "500ms" for m in usages)
    assert re.search(r"^     \d+/5 snapshots sharing following \d+ elements$|^     unique snapshot$",
                     text, re.MULTILINE)
    assert text.endswith("\n\n")
    # Every line of the node's report is indented by three spaces.
    assert all(line.startswith("   ") for line in lines[1:-2] if line)


def test_threads_are_labelled_with_their_tasks(
    busy_node: tuple[NodeProcess, dict[str, str]],
) -> None:
    node, ids = busy_node
    text = report(node, threads="10", snapshots="3")
    assert f"     tasks: [{ids['thread']} test:sleep]" in text
    assert re.search(rf"running \[{re.escape(ids['async'])} test:sleep in \w", text), text
    assert re.search(r"cpu usage by thread 'worker process \d+'\n"
                     rf"     tasks: \[{re.escape(ids['process'])} test:sleep\]", text), text
    # The busy thread task's stack shows the code that burns.
    assert "test_sleep._burn(test_sleep.py:" in text
    # The worker process is sampled with py-spy (a test dependency); without ptrace rights the
    # report says why instead.
    assert "     py-spy dump:" in text or "(py-spy could not sample process" in text, text


@pytest.mark.parametrize("kind", ["wait", "block"])
def test_wait_and_block_report_their_own_metric(
    busy_node: tuple[NodeProcess, dict[str, str]], kind: str,
) -> None:
    node, _ = busy_node
    text = report(node, type=kind, interval="100ms", snapshots="2", ignore_idle_threads="false")
    assert "interval=100ms" in text and "ignoreIdleThreads=false" in text
    assert re.search(rf"^   \s*\d+\.\d% \(\S+ out of 100ms\) {kind} usage by thread '", text,
                     re.MULTILINE), text


def test_threads_limits_the_report_and_sort_by_cpu(
    busy_node: tuple[NodeProcess, dict[str, str]],
) -> None:
    node, _ = busy_node
    text = report(node, threads="1", sort="cpu", interval="200ms", snapshots="1")
    assert len([line for line in text.split("\n") if USAGE.match(line)]) == 1


def test_node_selectors_in_the_path(busy_node: tuple[NodeProcess, dict[str, str]]) -> None:
    node, _ = busy_node
    for selector in (node.node_id, "_local", "_all", "hot"):
        text = report(node, f"/_nodes/{selector}/hot_threads", interval="10ms", snapshots="1")
        assert text.startswith("::: {hot}")
    assert report(node, "/_nodes/no-such-node/hot_threads", interval="10ms") == ""


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"type": "gpu"}, "type not supported [gpu]"),
        ({"sort": "slowest"}, "sort order not supported [slowest]"),
        ({"threads": "many"}, "Failed to parse int parameter [threads] with value [many]"),
        ({"snapshots": "0"}, "[snapshots] must be at least [1] but was [0]"),
        ({"interval": "2m"}, "[interval] must be at most [1m] but was [2m]"),
        ({"interval": "soon"}, None),
        ({"type": "mem"}, "thread allocated memory is not supported by the Python runtime"),
        ({"ignore_idle_threads": "maybe"}, None),
        ({"unknown": "1"}, None),
    ],
)
def test_bad_parameters_are_400s(
    shared_node: NodeProcess, params: dict[str, str], reason: str | None
) -> None:
    response = shared_node.get("/_nodes/hot_threads", params=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "illegal_argument_exception"
    if reason is not None:
        assert error["reason"] == reason
