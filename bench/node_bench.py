"""One-node benchmark: task bookkeeping cost, listing latency, cancel-to-stop latency.

Run: ``.venv/bin/python bench/node_bench.py [--runs 50]``. It starts its own node on a free
loopback port with a throwaway data folder, prints a table, and stops the node.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
SLOT_BYTES = 16


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):8.3f}  p95 {percentile(values, 95):8.3f}"


def bench_register(n: int = 200_000) -> list[float]:
    """(a) register + unregister of one task, in process, microseconds per pair (5 rounds)."""
    from taskwarden.tasks import TaskManager

    rounds = []
    for _ in range(5):
        manager = TaskManager("bench")
        start = time.perf_counter()
        for _ in range(n):
            manager.unregister(manager.register("transport", "bench:noop"))
        rounds.append((time.perf_counter() - start) / n * 1e6)
    return rounds


def bench_task_memory(n: int = 100_000) -> float:
    """(a) bytes of Python memory per registered, idle task (the registry's own bookkeeping:
    the task, its id and its registry entries), measured with tracemalloc."""
    import tracemalloc

    from taskwarden.tasks import TaskManager
    from taskwarden.tasks.ids import TaskId

    manager = TaskManager("bench")
    parent = TaskId("bench", 0)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tasks = [manager.register("transport", "bench:idle", parent_id=parent) for _ in range(n)]
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del tasks
    return used / n


class BenchNode:
    """A node subprocess with the benchmark actions loaded."""

    def __init__(self, data_dir: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "taskwarden", "serve", "--port", "0",
             "--data-dir", str(data_dir), "--node-name", "bench", "--app", "bench_actions"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        assert self.proc.stdout is not None
        self.url = ""
        for line in self.proc.stdout:
            if "started on " in line:
                self.url = line.split("started on ", 1)[1].split()[0]
                break
        if not self.url:
            raise RuntimeError("node did not start")
        self.http = httpx.Client(base_url=self.url, timeout=120)

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(60)


def bench_list(node: BenchNode, count: int, runs: int) -> list[float]:
    """(b) ``GET /_tasks`` latency in ms with ``count`` running tasks."""
    response = node.http.post(
        "/_actions/test:sleep",
        params={"wait_for_completion": "false"},
        json={"duration": "1h", "children_per_node": count},
    )
    parent = response.json()["task"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = node.http.get("/_tasks", params={"parent_task_id": parent, "group_by": "none"}).json()
        if len(body["tasks"]) >= count:
            break
        time.sleep(0.1)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        reply = node.http.get("/_tasks")
        samples.append((time.perf_counter() - start) * 1000)
        assert reply.status_code == 200
    node.http.post(f"/_tasks/{parent}/_cancel", params={"wait_for_completion": "true"})
    return samples


def bench_cancel(node: BenchNode, action: str, runs: int, shm: Path) -> list[float]:
    """(c) cancel request sent until the task's ``finally`` ran, in ms.

    The cancel goes over a kept-alive ``http.client`` connection, timed from just before the
    request is written, so the client library's own overhead stays out of the figure.
    """
    import http.client
    import mmap
    import struct
    from urllib.parse import urlsplit

    address = urlsplit(node.url)
    conn = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=60)
    shm.write_bytes(b"\0" * SLOT_BYTES * runs)
    samples = []
    with shm.open("r+b") as f, mmap.mmap(f.fileno(), 0) as mm:
        for slot in range(runs):
            reply = node.http.post(
                f"/_actions/{action}", params={"wait_for_completion": "false"},
                json={"path": str(shm), "slot": slot},
            )
            task_id = reply.json()["task"]
            deadline = time.monotonic() + 30
            while struct.unpack_from("d", mm, slot * SLOT_BYTES)[0] == 0.0:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{action} did not start")
                time.sleep(0.0005)
            time.sleep(0.05)
            sent = time.monotonic()
            conn.request("POST", f"/_tasks/{task_id}/_cancel")
            conn.getresponse().read()
            while (stopped := struct.unpack_from("d", mm, slot * SLOT_BYTES + 8)[0]) == 0.0:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{action} did not stop")
                time.sleep(0.0002)
            samples.append((stopped - sent) * 1000)
            node.http.get(f"/_tasks/{task_id}", params={"wait_for_completion": "true"})
    conn.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    print(f"taskwarden one-node benchmark, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"(a) register+unregister, us per task    {summary(bench_register())}")
    print(f"(a) memory per registered idle task     {bench_task_memory():8.0f} bytes")
    with tempfile.TemporaryDirectory() as tmp:
        node = BenchNode(Path(tmp) / "data")
        try:
            for count in (1_000, 10_000):
                samples = bench_list(node, count, max(20, args.runs // 2))
                print(f"(b) GET /_tasks, {count:>6} tasks, ms      {summary(samples)}")
            shm_dir = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tmp)
            shm = shm_dir / f"taskwarden-bench-{os.getpid()}"
            try:
                for label, action in (("asyncio", "bench:loop"), ("thread", "bench:loop-thread"),
                                      ("process", "bench:loop-process")):
                    samples = bench_cancel(node, action, args.runs, shm)
                    print(f"(c) cancel-to-finally {label:<8} ms      {summary(samples)}")
            finally:
                shm.unlink(missing_ok=True)
        finally:
            node.stop()


if __name__ == "__main__":
    main()
