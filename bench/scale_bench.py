"""One node at scale: memory per running task, ``GET /_tasks`` and a tree cancel with 100k tasks.

Run: ``.venv/bin/python bench/scale_bench.py [--tasks 100000] [--runs 7]``. It starts its own node
(with the benchmark actions) on a free loopback port and a throwaway data folder, starts one
``bench:local-tree`` parent with ``tasks`` sleeping ``test:sleep`` children (with ``--idle``,
``bench:idle`` children that only wait: the least a running task can hold), and prints:
(a) the node's resident memory per running child (RSS after minus before, over ``tasks``);
(b) ``GET /_tasks`` latency (median, p95) and the answer's size;
(c) how long ``POST /_tasks/{parent}/_cancel?wait_for_completion=true`` takes for the whole tree.
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
import psutil

HERE = Path(__file__).resolve().parent


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


def start_node(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskwarden", "serve", "--port", "0", "--data-dir", str(data_dir),
         "--node-name", "scale", "--app", "bench_actions"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "started on " in line:
            return proc, line.split("started on ", 1)[1].split()[0]
    raise RuntimeError("node did not start")


def running_children(client: httpx.Client, parent: str) -> int:
    body = client.get("/_tasks", params={"parent_task_id": parent, "group_by": "none",
                                         "filter_path": "tasks.id"}).json()
    return len(body.get("tasks", []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--idle", action="store_true", help="children that only wait")
    args = parser.parse_args()
    print(f"taskwarden one-node scale benchmark, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, {args.tasks} "
          f"{'bench:idle' if args.idle else 'test:sleep'} tasks")
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_node(Path(tmp) / "data")
        node = psutil.Process(proc.pid)
        client = httpx.Client(base_url=url, timeout=600)
        try:
            client.get("/_tasks")  # warm up the code paths before the baseline
            before = node.memory_info().rss
            started = time.perf_counter()
            parent = client.post(
                "/_actions/bench:local-tree", params={"wait_for_completion": "false"},
                json={"children": args.tasks, "idle": args.idle},
            ).json()["task"]
            while running_children(client, parent) < args.tasks:
                time.sleep(0.2)
            print(f"    started in {time.perf_counter() - started:.1f} s")
            per_task = (node.memory_info().rss - before) / args.tasks
            print(f"(a) resident memory per running task   {per_task:8.0f} bytes")

            samples, size = [], 0
            for _ in range(args.runs):
                began = time.perf_counter()
                reply = client.get("/_tasks")
                samples.append((time.perf_counter() - began) * 1000)
                size = len(reply.content)
            print(f"(b) GET /_tasks, ms                     median {statistics.median(samples):8.1f}"
                  f"  p95 {percentile(samples, 95):8.1f}  ({size / 1e6:.1f} MB)")

            began = time.perf_counter()
            answer = client.post(f"/_tasks/{parent}/_cancel",
                                 params={"wait_for_completion": "true", "timeout": "10m"})
            elapsed = (time.perf_counter() - began) * 1000
            assert answer.status_code == 200, answer.text[:500]
            print(f"(c) cancel the tree with wait, ms       {elapsed:8.1f}")
        finally:
            client.close()
            proc.terminate()
            proc.wait(120)


if __name__ == "__main__":
    main()
