"""Soak and load on three nodes: clients list, get and cancel while tasks start and stop.

Run: ``.venv/bin/python bench/soak_bench.py [--seconds 300] [--clients 20] [--tasks 10000]
[--store postgresql|sqlite] [--client-pause 0.05]``.

It starts three nodes on one store (loopback, free ports, throwaway folders): by default a
throwaway PostgreSQL server (tests/support/postgres.py, run with fsync off), or with
``--store sqlite`` one SQLite file. Then for ``seconds``:

* a separate starter process starts ``tasks`` background ``test:sleep`` tasks on an even schedule
  over the run (task *n* is due at ``(n + 0.5) * seconds / tasks``; 0-2 s long, every fourth with
  a child on each node, on a random node). Its ``--starter-threads`` threads each take the next
  due start, so a slow answer delays a start only when every thread is waiting for one (a fixed
  share per thread let each slow answer push back all of that thread's later starts); how late
  each start was sent after its due time is measured and reported. It runs in its own process so
  that the client threads do not compete with it for one interpreter lock;
* ``clients`` threads each loop over: list the cluster's tasks, get a known task, cancel a known
  task, pausing ``--client-pause`` seconds after each operation (a think time; 0 = flat out).

Every answer is classified: 404s and "not found" node failures in a 200 (a cancel of a task that
has finished, as Elasticsearch answers it) are expected; any other error status, transport error or
failure inside a 200 is reported with sampled reasons. Afterwards it checks that no task is left
registered, that every started task has its stored outcome, and how each node's resident memory
moved after the warm-up, and prints the nodes' (and PostgreSQL's) warnings and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import multiprocessing
import os
import queue
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from taskwarden.store.engine import SQLITE_BUSY_TIMEOUT_MILLIS

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
from postgres import PostgresServer

from cluster_bench import BenchCluster, percentile

LATE_S = 1.0
"""A start sent more than this long after its due time counts as late."""

# The PostgreSQL settings that bear on the figures; shown as the live server reports them.
PG_SETTINGS = (
    "server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers",
    "max_connections", "default_transaction_isolation", "deadlock_timeout", "lock_timeout",
    "statement_timeout",
)


class Tally:
    """Latencies by request kind, and every answer that was not a success or an expected miss."""

    def __init__(self, begin: float) -> None:
        self.begin = begin
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.expected_404 = 0
        self.unexpected: collections.Counter[str] = collections.Counter()
        # Successful answers that still carry node_failures or task_failures, by failure type;
        # "not found" ones (a cancel of a task that has finished, as in Elasticsearch) are expected.
        self.partial: collections.Counter[str] = collections.Counter()
        self.expected_not_found: collections.Counter[str] = collections.Counter()
        # A few reasons per kind of unexpected answer, with when (seconds into the run) they came.
        self.reasons: dict[str, list[str]] = collections.defaultdict(list)

    def record(self, kind: str, started: float, response: httpx.Response | None,
               failure: str | None = None) -> None:
        took = (time.perf_counter() - started) * 1000
        key, reason = None, ""
        if failure is not None:
            key, reason = f"{kind}: {failure}", failure
        elif response is not None and response.status_code >= 400 and response.status_code != 404:
            try:
                error = response.json().get("error", {})
            except ValueError:
                error = response.text[:200]
            kind_of = error.get("type") if isinstance(error, dict) else error
            reason = str(error.get("reason") if isinstance(error, dict) else error)
            key = f"{kind}: {response.status_code} {kind_of}"
        partial = [] if response is None or response.status_code >= 400 else _failures(response)
        with self.lock:
            for failure_key, failure_reason in partial:
                full_key = f"{kind}: {failure_key}"
                if failure_key.endswith("/resource_not_found_exception"):
                    self.expected_not_found[full_key] += 1
                    continue
                self.partial[full_key] += 1
                if len(self.reasons[full_key]) < 5:
                    self.reasons[full_key].append(
                        f"at {time.monotonic() - self.begin:6.1f} s: {failure_reason}")
            self.latency[kind].append(took)
            if key is not None:
                self.unexpected[key] += 1
                if len(self.reasons[key]) < 5:
                    self.reasons[key].append(f"at {time.monotonic() - self.begin:6.1f} s: {reason}")
            elif response is not None and response.status_code == 404:
                self.expected_404 += 1

    def as_dict(self) -> dict[str, Any]:
        return {"latency": dict(self.latency), "expected_404": self.expected_404,
                "unexpected": dict(self.unexpected), "partial": dict(self.partial),
                "expected_not_found": dict(self.expected_not_found), "reasons": dict(self.reasons)}

    def merge(self, other: dict[str, Any]) -> None:
        with self.lock:
            for kind, values in other["latency"].items():
                self.latency[kind].extend(values)
            self.expected_404 += other["expected_404"]
            self.unexpected.update(other["unexpected"])
            self.partial.update(other["partial"])
            self.expected_not_found.update(other["expected_not_found"])
            for key, reasons in other["reasons"].items():
                self.reasons[key].extend(reasons)


def _failures(response: httpx.Response) -> list[tuple[str, str]]:
    """(``field type/cause type``, reason) for each node_failures/task_failures entry."""
    if b"_failures" not in response.content:
        return []
    try:
        body = response.json()
    except ValueError:
        return []
    found = []
    for field in ("node_failures", "task_failures"):
        for failure in body.get(field) or []:
            cause = failure.get("caused_by") or {}
            kind = str(failure.get("type")) + (f"/{cause['type']}" if cause.get("type") else "")
            found.append((f"{field} {kind}", str(cause.get("reason") or failure.get("reason"))))
    return found


def starter_process(urls: list[str], begin: float, seconds: float, tasks: int, threads: int,
                    stop: Any, events: Any) -> None:
    """Start ``tasks`` tasks on schedule; ids go to ``events`` as they start, a summary at the end.

    ``begin`` is a ``time.monotonic()`` value: CLOCK_MONOTONIC is shared by the machine's processes.
    """
    tally = Tally(begin)
    lags: list[float] = []
    numbers = itertools.count()
    lock = threading.Lock()

    def work() -> None:
        with httpx.Client(timeout=60) as http:
            while True:
                with lock:
                    n = next(numbers)
                if n >= tasks:
                    return
                due = begin + (n + 0.5) * seconds / tasks
                # Once stopped (the run is over), a start already due is still sent unless late.
                stopped = stop.wait(max(0.0, due - time.monotonic()))
                if stopped and not due <= time.monotonic() <= due + LATE_S:
                    return
                rng = random.Random(n)
                body = {"duration": f"{rng.randint(0, 2000)}ms",
                        "children_per_node": 1 if n % 4 == 0 else 0}
                url = rng.choice(urls)
                with lock:
                    lags.append(time.monotonic() - due)
                t0 = time.perf_counter()
                try:
                    response = http.post(f"{url}/_actions/test:sleep",
                                         params={"wait_for_completion": "false"}, json=body)
                except httpx.HTTPError as exc:
                    tally.record("start", t0, None, type(exc).__name__)
                    continue
                tally.record("start", t0, response)
                if response.status_code == 200:
                    events.put(("started", response.json()["task"]))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    events.put(("done", {"tally": tally.as_dict(), "lags": lags,
                         "cpu_s": sum(os.times()[:2])}))


def pg_settings(url: str) -> dict[str, str]:
    import asyncpg  # the nodes' PostgreSQL driver, installed with the project

    async def read() -> dict[str, str]:
        conn = await asyncpg.connect(url)
        try:
            return {name: str(await conn.fetchval(f"SHOW {name}")) for name in PG_SETTINGS}
        finally:
            await conn.close()

    return asyncio.run(read())


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="taskwarden-soak-") as tmp:
        server: PostgresServer | None = None
        store_url: str | None = None
        if args.store == "postgresql":
            server = PostgresServer()
            server.start()
        try:
            if server is not None:
                store_url = server.create_database("soak")
                settings = pg_settings(store_url)
                store = (f"PostgreSQL {settings.pop('server_version')} (throwaway server, "
                         f"{store_url})")
                print(f"store: {store}")
                print("  settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
                print("  NOTE: fsync, synchronous_commit and full_page_writes are off: commits "
                      "are not flushed to disk, so writes are cheaper than on a durable server")
            else:
                store = (f"SQLite file in {tmp} (one write lock for all nodes, "
                         f"{SQLITE_BUSY_TIMEOUT_MILLIS / 1000:g} s busy wait)")
                print(f"store: {store}")
            cluster = BenchCluster(Path(tmp), store=store_url)
            try:
                soak(cluster, args, store, None if server is None else postmaster(server))
            finally:
                cluster.stop()
        finally:
            if server is not None:
                print_postgres_log(server)
                server.stop()


def postmaster(server: PostgresServer) -> psutil.Process:
    return psutil.Process(int((server.data_dir / "postmaster.pid").read_text().split()[0]))


def process_cpu(parent: psutil.Process | None) -> dict[int, float]:
    """CPU seconds of ``parent`` and its children by process id (PostgreSQL: one per connection)."""
    if parent is None:
        return {}
    found = {}
    for proc in [parent, *parent.children(recursive=True)]:
        try:
            found[proc.pid] = sum(proc.cpu_times()[:2])
        except psutil.Error:
            continue
    return found


def soak(cluster: BenchCluster, args: argparse.Namespace, store: str,
         database: psutil.Process | None) -> None:
    seconds, clients, tasks, pause = args.seconds, args.clients, args.tasks, args.client_pause
    urls = [str(c.base_url).rstrip("/") for c in cluster.clients]
    procs = [psutil.Process(p.pid) for p in cluster.procs]
    cpu_before = [sum(p.cpu_times()[:2]) for p in procs]
    database_before = process_cpu(database)
    started_ids: list[str] = []
    ids_lock = threading.Lock()
    stop = threading.Event()
    rss: list[tuple[float, list[int]]] = []

    # The starters get a head start to spawn and import; the run is [begin, begin + seconds).
    context = multiprocessing.get_context("spawn")
    starter_stop = context.Event()
    events = context.Queue()
    begin = time.monotonic() + 5.0
    tally = Tally(begin)
    starter = context.Process(
        target=starter_process,
        args=(urls, begin, seconds, tasks, args.starter_threads, starter_stop, events),
        daemon=True,  # ends with the bench if it is interrupted
    )
    starter.start()
    done: dict[str, Any] = {}

    def collect() -> None:
        while True:
            try:
                what, value = events.get(timeout=1.0)
            except queue.Empty:
                if not starter.is_alive():
                    return
                continue
            if what == "started":
                with ids_lock:
                    started_ids.append(value)
            else:
                done.update(value)
                return

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=60) as http:
            stop.wait(rng.uniform(0, 3 * pause))  # out of step with each other
            while not stop.is_set():
                with ids_lock:
                    known = rng.choice(started_ids) if started_ids else None
                url = rng.choice(urls)
                for kind in ("list", "get", "cancel"):
                    if kind != "list" and known is None:
                        continue
                    t0 = time.perf_counter()
                    try:
                        if kind == "list":
                            response = http.get(f"{url}/_tasks", params={"actions": "test:*"})
                        elif kind == "get":
                            response = http.get(f"{url}/_tasks/{known}")
                        else:
                            response = http.post(f"{url}/_tasks/{known}/_cancel")
                    except httpx.HTTPError as exc:
                        tally.record(kind, t0, None, type(exc).__name__)
                    else:
                        tally.record(kind, t0, response)
                    if pause > 0 and stop.wait(pause):
                        break

    def sampler() -> None:
        while not stop.wait(5.0):
            rss.append((time.monotonic() - begin, [p.memory_info().rss for p in procs]))

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    threads = [threading.Thread(target=client, args=(100 + i,)) for i in range(clients)]
    threads.append(threading.Thread(target=sampler))
    try:
        time.sleep(max(0.0, begin - time.monotonic()))
        cpu_bench = sum(os.times()[:2])
        machine = psutil.cpu_times()
        for thread in threads:
            thread.start()
        time.sleep(max(0.0, begin + seconds - time.monotonic()))
    finally:  # also when interrupted: the threads and the starter process stop
        stop.set()
        starter_stop.set()
        for thread in threads:
            if thread.is_alive():
                thread.join()
    ended = time.monotonic() - begin
    cpu_bench = sum(os.times()[:2]) - cpu_bench
    machine_now = psutil.cpu_times()
    machine_idle = (machine_now.idle + machine_now.iowait) - (machine.idle + machine.iowait)
    machine_busy = 1 - machine_idle / (ended * (os.cpu_count() or 1))
    cpu_nodes = [sum(p.cpu_times()[:2]) - before for p, before in zip(procs, cpu_before, strict=True)]
    cpu_database = sum(cpu - database_before.get(pid, 0.0)
                       for pid, cpu in process_cpu(database).items())
    collector.join()
    starter.join(60)
    if not done:
        print(f"!! the starter process ended without its summary (exit code {starter.exitcode})")
        done = {"tally": Tally(begin).as_dict(), "lags": [], "cpu_s": float("nan")}
    tally.merge(done["tally"])
    print(f"\ntaskwarden soak: 3 nodes, store {store}")
    print(f"  {clients} clients pausing {pause * 1000:.0f} ms after each operation, "
          f"{tasks} starts due over {seconds:.0f} s ({tasks / seconds:.1f}/s) from "
          f"{args.starter_threads} starter threads in their own process; "
          f"{os.cpu_count()} cores, load average now {os.getloadavg()[0]:.1f}")
    report_starts(done["lags"], started_ids, tasks, seconds)
    client_ops = sum(len(v) for kind, v in tally.latency.items() if kind != "start")
    print(f"  client operations: {client_ops} in {ended:.0f} s = {client_ops / ended:.1f}/s ("
          + ", ".join(f"{kind} {len(v) / ended:.1f}/s" for kind, v in sorted(tally.latency.items())
                      if kind != "start") + ")")
    print(f"  CPU seconds: starter process {done['cpu_s']:.1f}, client process {cpu_bench:.1f}, "
          f"nodes " + " / ".join(f"{c:.1f}" for c in cpu_nodes)
          + ("" if database is None else f", PostgreSQL {cpu_database:.1f}")
          + f"; the machine's cores were {machine_busy:.0%} busy (with whatever else ran)")
    report(tally, started_ids, urls, rss, args.warm_up)
    print_node_logs(cluster.logs)


def report_starts(lags: list[float], started: list[str], tasks: int, seconds: float) -> None:
    sent = len(lags)
    late = sum(lag > LATE_S for lag in lags)
    print(f"  starts: {tasks} due, {sent} sent ({late} late, more than {LATE_S:.0f} s after "
          f"due), {tasks - sent} not sent by the end; {len(started)} started (answered 200) = "
          f"{len(started) / seconds:.1f}/s achieved")
    if lags:
        print(f"  start sent after due: median {statistics.median(lags) * 1000:.0f} ms, "
              f"p95 {percentile(lags, 95) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms")


def report(tally: Tally, started: list[str], urls: list[str],
           rss: list[tuple[float, list[int]]], warm_up: float) -> None:
    for kind, values in sorted(tally.latency.items()):
        print(f"  {kind:<7} n={len(values):>7}  median {statistics.median(values):7.1f} ms  "
              f"p95 {percentile(values, 95):7.1f} ms  max {max(values):8.1f} ms")
    print(f"  expected 404s: {tally.expected_404}; expected 'not found' failures in 200 answers: "
          f"{sum(tally.expected_not_found.values())} {dict(tally.expected_not_found)}")
    print(f"  unexpected answers: {sum(tally.unexpected.values())} {dict(tally.unexpected)}")
    print(f"  other failures in 200 answers: {sum(tally.partial.values())} "
          f"{dict(tally.partial)}")
    for key, reasons in sorted(tally.reasons.items()):
        print(f"    {key}:", *reasons, sep="\n      ")
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
    warm = [sample for at, sample in rss if at >= warm_up]
    if len(warm) < 2:
        print(f"  RSS: fewer than two samples after the {warm_up:.0f} s warm-up")
        return
    for index in range(len(warm[0])):
        first, last = warm[0][index], warm[-1][index]
        peak = max(sample[index] for sample in warm)
        change = (last - first) / first * 100
        flat = "within" if abs(change) <= 10 and (peak - first) / first <= 0.10 else "NOT within"
        print(f"  node {index + 1} RSS after {warm_up:.0f} s warm-up {first / 2**20:6.1f} MB, end "
              f"{last / 2**20:6.1f} MB ({change:+.1f}%), peak {peak / 2**20:6.1f} MB "
              f"({flat} 10%)")


def _shape(line: str) -> str:
    """A log line without its time stamp, ids and numbers: lines of one kind look alike."""
    message = line.split(" ", 2)[-1] if re.match(r"\d{4}-\d\d-\d\d ", line) else line
    message = re.sub(r"\[[^\]]*\]", "[..]", message)
    return re.sub(r"\d+(\.\d+)?", "N", message).strip()


def _warnings(lines: list[str]) -> list[str]:
    """WARNING and ERROR lines; a traceback shows as its last line (the exception raised)."""
    found: list[str] = []
    in_traceback = chained = False
    for line in lines:
        if re.match(r"\d{4}-\d\d-\d\d ", line):
            in_traceback = chained = False
            if " WARNING " in line or " ERROR " in line:
                found.append(line.strip())
        elif line.startswith(("During handling", "The above exception")):
            chained = in_traceback
        elif line.startswith("Traceback"):
            if not chained:  # a chained exception's traceback continues the same entry
                found.append("traceback ending: ")
            in_traceback, chained = True, False
        elif in_traceback and line.strip() and not line.startswith(" "):
            found[-1] = f"traceback ending: {line.strip()}"
    return found


def print_node_logs(logs: list[list[str]]) -> None:
    for index, lines in enumerate(logs, 1):
        warnings = _warnings(list(lines))
        print(f"  node {index}: {len(warnings)} warnings/errors/tracebacks logged")
        kinds: dict[str, list[str]] = collections.defaultdict(list)
        for line in warnings:
            kinds[_shape(line)].append(line)
        for same in sorted(kinds.values(), key=len, reverse=True)[:8]:
            print(f"    {len(same):>5} x  {same[0]}")


def print_postgres_log(server: PostgresServer) -> None:
    try:
        lines = server.log_file.read_text(errors="replace").splitlines()
    except OSError as exc:
        print(f"  PostgreSQL log unreadable: {exc}")
        return
    notable = [line for line in lines if re.search(r"\b(ERROR|FATAL|PANIC|WARNING|LOG: +could)\b", line)]
    print(f"  PostgreSQL log: {len(lines)} lines, {len(notable)} errors/warnings")
    kinds: dict[str, list[str]] = collections.defaultdict(list)
    for line in notable:
        kinds[_shape(line)].append(line)
    for same in sorted(kinds.values(), key=len, reverse=True)[:8]:
        print(f"    {len(same):>5} x  {same[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--store", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--client-pause", type=float, default=0.05,
                        help="seconds each client waits after each operation (default 0.05)")
    parser.add_argument("--starter-threads", type=int, default=32,
                        help="most starts in flight at once (default 32)")
    parser.add_argument("--warm-up", type=float, default=60.0,
                        help="seconds before the RSS baseline is taken (default 60)")
    args = parser.parse_args()
    run(args)


if __name__ == "__main__":
    main()
