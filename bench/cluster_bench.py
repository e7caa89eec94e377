"""Three-node benchmark on one shared SQLite file: tree cancel with waiting, and cluster-wide listing.

Run: ``.venv/bin/python bench/cluster_bench.py [--runs 10] [--children 1000] [--tasks 10000]``.
It starts three nodes on free loopback ports with throwaway data folders, prints medians and p95,
and stops them. (a) cancels a ``test:sleep`` tree with ``children`` children on each node with
``wait_for_completion=true`` (request sent until the answer arrived, so the whole tree has
stopped); (b) times ``GET /_tasks`` from one node while each node runs ``tasks`` tasks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):8.1f}  p95 {percentile(values, 95):8.1f}  (n={len(values)})"


class BenchCluster:
    """Three node processes with the benchmark actions loaded, on one shared store.

    ``store`` is the store URL the nodes share; by default a SQLite file in ``root``.
    """

    def __init__(self, root: Path, store: str | None = None) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
        self.store = store if store is not None else f"sqlite:///{root / 'cluster.db'}"
        self.procs: list[subprocess.Popen[str]] = []
        self.clients: list[httpx.Client] = []
        # Each node's output after its start line, read all along (an unread pipe would fill up
        # and stop the node when it logs).
        self.logs: list[list[str]] = []
        for index in range(1, 4):
            proc = subprocess.Popen(
                [sys.executable, "-m", "taskwarden", "serve", "--port", "0",
                 "--data-dir", str(root / f"n{index}"), "--node-name", f"n{index}",
                 "--store", self.store, "--app", "bench_actions"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            )
            assert proc.stdout is not None
            url = ""
            before: list[str] = []
            for line in proc.stdout:
                if "started on " in line:
                    url = line.split("started on ", 1)[1].split()[0]
                    break
                before.append(line)
            if not url:
                proc.wait(60)
                self.stop()
                raise RuntimeError(f"node n{index} did not start:\n{''.join(before[-30:])}")
            self.procs.append(proc)
            self.clients.append(httpx.Client(base_url=url, timeout=300))
            lines: list[str] = []
            self.logs.append(lines)
            threading.Thread(target=lines.extend, args=(proc.stdout,), daemon=True).start()
        self.wait(lambda: len(self.clients[0].get("/_nodes").json()["nodes"]) == 3)

    @staticmethod
    def wait(condition: object, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise RuntimeError("condition not met in time")
            time.sleep(0.05)

    def count(self, action: str) -> int:
        body = self.clients[0].get("/_tasks", params={"actions": action, "group_by": "none"}).json()
        return len(body["tasks"])

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(120)


def bench_tree_cancel(cluster: BenchCluster, children: int, runs: int) -> list[float]:
    samples = []
    first, other = cluster.clients[0], cluster.clients[1]
    for _ in range(runs):
        parent = first.post(
            "/_actions/test:sleep", params={"wait_for_completion": "false"},
            json={"duration": "1h", "children_per_node": children},
        ).json()["task"]
        cluster.wait(lambda: cluster.count("test:sleep*") >= 1 + 3 * children)
        start = time.perf_counter()
        answer = other.post(f"/_tasks/{parent}/_cancel", params={"wait_for_completion": "true"})
        samples.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200 and "node_failures" not in answer.json(), answer.text
        assert cluster.count("test:sleep*") == 0
    return samples


def bench_cluster_list(cluster: BenchCluster, tasks: int, runs: int) -> list[float]:
    parents = [
        client.post("/_actions/bench:local-tree", params={"wait_for_completion": "false"},
                    json={"children": tasks}).json()["task"]
        for client in cluster.clients
    ]
    cluster.wait(lambda: cluster.count("test:sleep*") >= 3 * tasks)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        reply = cluster.clients[0].get("/_tasks")
        samples.append((time.perf_counter() - start) * 1000)
        assert reply.status_code == 200 and "node_failures" not in reply.json(), reply.text[:500]
    for parent, client in zip(parents, cluster.clients, strict=True):
        client.post(f"/_tasks/{parent}/_cancel", params={"wait_for_completion": "true"})
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=10_000)
    args = parser.parse_args()
    print(f"taskwarden three-node benchmark, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        cluster = BenchCluster(Path(tmp))
        try:
            samples = bench_tree_cancel(cluster, args.children, args.runs)
            print(f"(a) cancel tree, {args.children}/node x 3, wait, ms   {summary(samples)}")
            samples = bench_cluster_list(cluster, args.tasks, max(args.runs, 10))
            print(f"(b) GET /_tasks, {args.tasks}/node x 3, ms         {summary(samples)}")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
