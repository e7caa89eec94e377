"""Soak and load on three nodes: clients list, get and cancel while tasks start and stop.

Run: ``.venv/bin/python bench/soak_bench.py [--seconds 300] [--clients 20] [--tasks 10000]``.
It starts three nodes on one SQLite file (loopback, free ports, throwaway folders), then for
``seconds``: starter threads start ``tasks`` background ``test:sleep`` tasks spread over the run
(0-2 s long, every fourth with a child on each node, started on a random node), while ``clients``
threads each loop over: list the cluster's tasks, get a known task, cancel a known task. Every
answer is classified; afterwards it checks that no task is left registered, that every started
task has its stored outcome, and how each node's resident memory moved after a 60 s warm-up.
"""

from __future__ import annotations

import argparse
import collections
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster_bench import BenchCluster, percentile

WARM_UP_S = 60.0


class Tally:
    """Latencies by request kind, and every answer that was not a success or an expected 404."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.expected_404 = 0
        self.unexpected: collections.Counter[str] = collections.Counter()

    def record(self, kind: str, started: float, response: httpx.Response | None,
               failure: str | None = None) -> None:
        took = (time.perf_counter() - started) * 1000
        with self.lock:
            self.latency[kind].append(took)
            if failure is not None:
                self.unexpected[f"{kind}: {failure}"] += 1
            elif response is not None and response.status_code == 404:
                self.expected_404 += 1
            elif response is not None and response.status_code >= 400:
                error = response.json().get("error", {})
                kind_of = error.get("type") if isinstance(error, dict) else error
                self.unexpected[f"{kind}: {response.status_code} {kind_of}"] += 1


def run(seconds: float, clients: int, tasks: int) -> None:
    with tempfile.TemporaryDirectory(prefix="taskwarden-soak-") as tmp:
        cluster = BenchCluster(Path(tmp))
        try:
            soak(cluster, seconds, clients, tasks)
        finally:
            cluster.stop()


def soak(cluster: BenchCluster, seconds: float, clients: int, tasks: int) -> None:
    urls = [str(c.base_url).rstrip("/") for c in cluster.clients]
    procs = [psutil.Process(p.pid) for p in cluster.procs]
    tally = Tally()
    started_ids: list[str] = []
    ids_lock = threading.Lock()
    stop = threading.Event()
    begin = time.monotonic()
    rss: list[tuple[float, list[int]]] = []

    def starter(share: int, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=60) as http:
            for n in range(share):
                due = begin + (n + 0.5) * seconds / share
                if stop.wait(max(0.0, due - time.monotonic())):
                    return
                body = {"duration": f"{rng.randint(0, 2000)}ms",
                        "children_per_node": 1 if n % 4 == 0 else 0}
                t0 = time.perf_counter()
                try:
                    response = http.post(f"{rng.choice(urls)}/_actions/test:sleep",
                                         params={"wait_for_completion": "false"}, json=body)
                except httpx.HTTPError as exc:
                    tally.record("start", t0, None, type(exc).__name__)
                    continue
                tally.record("start", t0, response)
                if response.status_code == 200:
                    with ids_lock:
                        started_ids.append(response.json()["task"])

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                with ids_lock:
                    known = rng.choice(started_ids) if started_ids else None
                url = rng.choice(urls)
                for kind in ("list", "get", "cancel"):
                    t0 = time.perf_counter()
                    try:
                        if kind == "list":
                            response = http.get(f"{url}/_tasks", params={"actions": "test:*"})
                        elif known is None:
                            continue
                        elif kind == "get":
                            response = http.get(f"{url}/_tasks/{known}")
                        else:
                            response = http.post(f"{url}/_tasks/{known}/_cancel")
                    except httpx.HTTPError as exc:
                        tally.record(kind, t0, None, type(exc).__name__)
                        continue
                    tally.record(kind, t0, response)

    def sampler() -> None:
        while not stop.wait(5.0):
            rss.append((time.monotonic() - begin, [p.memory_info().rss for p in procs]))

    starters = 16
    threads = [threading.Thread(target=starter, args=(tasks // starters, i)) for i in range(starters)]
    threads += [threading.Thread(target=client, args=(100 + i,)) for i in range(clients)]
    threads.append(threading.Thread(target=sampler))
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    report(tally, started_ids, urls, rss, seconds, clients)
    for index, lines in enumerate(cluster.logs, 1):
        warnings = [line.strip() for line in lines if " WARNING " in line or " ERROR " in line]
        print(f"  node {index}: {len(warnings)} warnings/errors logged", *warnings[:3], sep="\n    ")


def report(tally: Tally, started: list[str], urls: list[str],
           rss: list[tuple[float, list[int]]], seconds: float, clients: int) -> None:
    print(f"taskwarden soak: 3 nodes, {clients} clients, {seconds:.0f} s, "
          f"{len(started)} tasks started")
    for kind, values in sorted(tally.latency.items()):
        print(f"  {kind:<7} n={len(values):>7}  median {statistics.median(values):7.1f} ms  "
              f"p95 {percentile(values, 95):7.1f} ms")
    print(f"  expected 404s: {tally.expected_404}")
    print(f"  unexpected answers: {sum(tally.unexpected.values())} {dict(tally.unexpected)}")
    with httpx.Client(timeout=120) as http:
        deadline = time.monotonic() + 60
        left = None
        while time.monotonic() < deadline:
            body = http.get(f"{urls[0]}/_tasks", params={"actions": "test:*",
                                                          "group_by": "none"}).json()
            left = len(body["tasks"])
            if left == 0:
                break
            time.sleep(0.5)
        print(f"  tasks still registered 60 s after the end: {left}")
        missing = []
        for task_id in started:
            answer = http.get(f"{urls[0]}/_tasks/{task_id}")
            if answer.status_code != 200 or answer.json().get("completed") is not True:
                missing.append(f"{task_id} -> {answer.status_code} {answer.text[:160]}")
        print(f"  started tasks without a stored outcome: {len(missing)}", *missing[:5],
              sep="\n    ")
    warm = [sample for at, sample in rss if at >= WARM_UP_S]
    if len(warm) >= 2:
        for index in range(len(warm[0])):
            first, last = warm[0][index], warm[-1][index]
            peak = max(sample[index] for sample in warm)
            print(f"  node {index + 1} RSS after warm-up {first / 2**20:6.1f} MB, end "
                  f"{last / 2**20:6.1f} MB ({(last - first) / first * 100:+.1f}%), "
                  f"peak {peak / 2**20:6.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=10_000)
    args = parser.parse_args()
    run(args.seconds, args.clients, args.tasks)


if __name__ == "__main__":
    main()
