"""taskwarden: the peers' job and definition of "stopped", on one node started by this harness.

Runs in the project's virtualenv (it needs taskwarden, httpx and the official elasticsearch
client). The node loads ``taskwarden_tasks`` with ``--app``; every cancel goes over loopback HTTP
to that separate process, through one of three clients:

* REST: a kept-alive ``http.client`` connection, the closest thing to curl in a loop;
* the Python client ``taskwarden.client.Client``;
* the official ``elasticsearch`` client, ``Elasticsearch(url).tasks.cancel(task_id=...)``.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import common
from common import WorkerProc, measure_cancel, stats, summarize_cancel, time_calls
from elasticsearch import Elasticsearch

from taskwarden.client import Client

EXECUTORS = ("async", "thread", "process")
LIST_CALLS = max(30, common.LIST_N)
LIST_RUNNING = 10


class Rest:
    """A kept-alive loopback connection speaking the REST API; reconnects if the node closed it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 9200)
        self._conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(*self._address, timeout=common.STOP_TIMEOUT + 10)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        for attempt in (0, 1):
            try:
                self._conn.request(method, path, body=payload, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                if attempt:
                    raise
                self._conn.close()
                self._conn = self._connect()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data)

    def close(self) -> None:
        self._conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_node(data_dir: str) -> tuple[WorkerProc, str]:
    port = free_port()
    worker = WorkerProc("taskwarden", [
        sys.executable, "-m", "taskwarden", "serve", "--port", str(port), "--data-dir", data_dir,
        "--node-name", "peerbench", "--app", "taskwarden_tasks",
    ])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.proc.poll() is not None:
            raise RuntimeError(f"node exited with {worker.proc.returncode}; see {worker.log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return worker, url
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("node did not start listening within 60 s")


def cancellers(url: str) -> dict[str, Callable[[str, bool], Any]]:
    """One cancel function per client: ``cancel(task_id, wait_for_completion)``."""
    rest = Rest(url)
    client = Client(url, timeout=common.STOP_TIMEOUT + 10)
    es = Elasticsearch(url, request_timeout=common.STOP_TIMEOUT + 10)

    def by_rest(task_id: str, wait: bool) -> Any:
        query = "?wait_for_completion=true" if wait else ""
        return rest.call("POST", f"/_tasks/{task_id}/_cancel{query}")

    def by_client(task_id: str, wait: bool) -> Any:
        return client.cancel(task_id=task_id, wait_for_completion=wait or None)

    def by_es(task_id: str, wait: bool) -> Any:
        return es.tasks.cancel(task_id=task_id, wait_for_completion=wait or None).body

    return {"REST": by_rest, "Python client": by_client, "elasticsearch client": by_es}


def cancel_variants(worker: WorkerProc, url: str, res: dict[str, Any]) -> None:
    submitter = Rest(url)
    cancel_by = cancellers(url)

    def submit_for(executor: str) -> Callable[[str, float], str]:
        def submit(key: str, duration: float) -> str:
            reply = submitter.call("POST", f"/_actions/peer:long-{executor}?wait_for_completion=false",
                                   {"key": key, "duration": duration})
            return str(reply["task"])
        return submit

    def check_stored(record: dict[str, Any]) -> None:
        """The stored outcome of the cancelled job (a background task keeps its error)."""
        task_id = record["call_ret_task"]
        stored = submitter.call("GET", f"/_tasks/{task_id}?wait_for_completion=true&timeout=30s")
        record["stored_error"] = (stored.get("error") or {}).get("type")

    seed = 9000
    plan = [(executor, client, False) for executor in EXECUTORS for client in cancel_by]
    plan += [(executor, "REST", True) for executor in EXECUTORS]
    only = os.environ.get("PEER_TASKWARDEN_ONLY")  # e.g. "async executor: cancel via REST"
    for executor, client, wait in plan:
        seed += 1
        name = (f"{executor} executor: cancel via {client}"
                f"{' with wait_for_completion=true' if wait else ''}")
        if only and only not in name:
            continue
        print(f"taskwarden: {name}", flush=True)
        cancel = cancel_by[client]
        last: dict[str, str] = {}
        submit_job = submit_for(executor)

        def submit(key: str, duration: float) -> str:
            last["task"] = submit_job(key, duration)
            return last["task"]

        def after(record: dict[str, Any]) -> None:
            record["call_ret_task"] = last["task"]
            check_stored(record)

        recs = measure_cancel(worker, submit, lambda task_id, c=cancel, w=wait: c(task_id, w),
                              common.REPS, seed=seed, label=name, after_rep=after)
        res["raw"][name] = recs
        summary = summarize_cancel(recs)
        summary["stored_errors"] = sorted({str(r.get("stored_error")) for r in recs if "error" not in r})
        res["variants"][name] = summary
    submitter.close()


def start_latency(worker: WorkerProc, url: str, res: dict[str, Any]) -> None:
    submitter = Rest(url)
    for executor in EXECUTORS:
        def submit(key: str, _executor: str = executor) -> None:
            submitter.call("POST", f"/_actions/peer:trivial-{_executor}?wait_for_completion=false",
                           {"key": key})
        assert common.warmup(submit), f"warm-up of the {executor} executor failed"
        common.measure_start_both(worker, submit, res, f"{executor} executor, REST submit",
                                  label=f"taskwarden {executor}")
    submitter.close()


def list_running(worker: WorkerProc, url: str, res: dict[str, Any]) -> None:
    rest = Rest(url)
    client = Client(url)
    es = Elasticsearch(url)
    keys = []
    for _ in range(LIST_RUNNING):
        key = common.new_key()
        common.hb_create(key)
        rest.call("POST", "/_actions/peer:long-async?wait_for_completion=false",
                  {"key": key, "duration": common.JOB_SECONDS})
        keys.append(key)
    for key in keys:
        hb = common.wait_running(key)
        assert hb is not None, "a listed job did not start"
    queries: dict[str, Callable[[], Any]] = {
        "REST GET /_tasks?actions=peer:long-*":
            lambda: rest.call("GET", "/_tasks?actions=peer:long-*"),
        "Python client list_tasks(actions=\"peer:long-*\")":
            lambda: client.list_tasks(actions="peer:long-*"),
        "elasticsearch client tasks.list(actions=\"peer:long-*\")":
            lambda: es.tasks.list(actions="peer:long-*").body,
    }
    for name, query in queries.items():
        time_calls(query, 3)
        took, last = time_calls(query, LIST_CALLS)
        listed = sum(len(node["tasks"]) for node in last["nodes"].values())
        res["list_running"][f"{name} ({LIST_RUNNING} running)"] = {
            **stats(took), "job_listed": listed == LIST_RUNNING}
    rest.call("POST", "/_tasks/_cancel?actions=peer:long-*&wait_for_completion=true")
    for key in keys:
        common.hb_remove(key)
    rest.close()
    client.close()
    es.close()


def main() -> None:
    common.harness_init()
    versions = {name: common.pkg_version(name) for name in ("taskwarden", "elasticsearch", "httpx")}
    res: dict[str, Any] = {
        "peer": "taskwarden", "versions": versions,
        "worker": "taskwarden serve (one node, SQLite store), actions loaded with --app",
        "variants": {}, "raw": {}, "list_running": {},
    }
    with tempfile.TemporaryDirectory(prefix="taskwarden-peerbench-") as tmp:
        worker, url = start_node(os.path.join(tmp, "data"))
        try:
            if not os.environ.get("PEER_TASKWARDEN_ONLY"):
                start_latency(worker, url, res)
                list_running(worker, url, res)
            cancel_variants(worker, url, res)
        finally:
            worker.stop()
    common.save("taskwarden", res)


if __name__ == "__main__":
    main()
