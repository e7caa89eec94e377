"""Celery: revoke(terminate=False), revoke(terminate=True, SIGTERM), revoke(terminate=True, SIGUSR1),
AbortableTask.abort().  Worker: prefork, concurrency 2."""
import os
import socket
import sys
import time

import common
from celery.contrib.abortable import AbortableAsyncResult
from celery.result import AsyncResult
from celery.states import READY_STATES
from celery_tasks import abortable_job, app, long_job, trivial
from common import WorkerProc, measure_cancel, stats, summarize_cancel, time_calls

WORKER_NAME = "bench@" + socket.gethostname()
VENV_BIN = os.path.dirname(sys.executable)


def wait_worker(timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = app.control.ping(destination=[WORKER_NAME], timeout=0.5)
        if r:
            return True
    return False


def status_done(h):
    """Celery's own view: AsyncResult.state reaches a ready state (SUCCESS/FAILURE/REVOKED)."""
    st = AsyncResult(h.id, app=app).state
    return st if st in READY_STATES else None


def main():
    common.harness_init()
    common.flushdb(1)
    w = WorkerProc("celery", [os.path.join(VENV_BIN, "celery"), "-A", "celery_tasks", "worker",
                              "-P", "prefork", "-c", "2", "-n", WORKER_NAME, "--loglevel", "WARNING",
                              "--without-gossip", "--without-mingle", "--without-heartbeat"])
    res = {"peer": "celery", "versions": {p: common.pkg_version(p) for p in ("celery", "kombu", "billiard", "redis")},
           "worker": "celery worker -P prefork -c 2 (prefetch_multiplier=1), Redis broker+backend",
           "variants": {}, "raw": {}}
    try:
        assert wait_worker(), "celery worker did not answer ping"
        sub_triv = lambda key: trivial.delay(key)
        assert common.warmup(sub_triv), "warm-up failed"

        # --- submit-to-start
        common.measure_start_both(w, sub_triv, res, "prefork -c 2", label="celery")

        submit_plain = lambda key, d: long_job.delay(key, d)

        variants = [
            ("revoke(terminate=True, signal='SIGTERM')", submit_plain,
             lambda h: h.revoke(terminate=True, signal="SIGTERM"), common.REPS),
            ("revoke(terminate=True, signal='SIGUSR1')", submit_plain,
             lambda h: h.revoke(terminate=True, signal="SIGUSR1"), common.REPS),
            ("AbortableTask: AbortableAsyncResult.abort()", lambda key, d: abortable_job.delay(key, d),
             lambda h: AbortableAsyncResult(h.id, app=app).abort(), common.REPS),
            ("revoke(terminate=False)", submit_plain,
             lambda h: h.revoke(terminate=False), common.NONCANCEL_REPS),
        ]
        for i, (name, sub, cancel, reps) in enumerate(variants):
            print(f"celery: {name}", flush=True)
            recs = measure_cancel(w, sub, cancel, reps, seed=1000 + i, label=name, status_done=status_done)
            res["raw"][name] = recs
            res["variants"][name] = summarize_cancel(recs)

        # --- list running jobs: inspect().active(), with one long job running
        key = common.new_key()
        common.hb_create(key)
        h = long_job.delay(key, common.JOB_SECONDS)
        hb = common.wait_running(key)
        w.note_job_pid(hb["pid"])
        time.sleep(0.2)
        q = {}
        ts, last = time_calls(lambda: app.control.inspect(timeout=1.0).active())
        q["app.control.inspect().active()  [default timeout=1.0 s, no destination]"] = {
            **stats(ts), "job_listed": h.id in str(last)}
        ts, last = time_calls(lambda: app.control.inspect(destination=[WORKER_NAME], timeout=1.0).active())
        q["app.control.inspect(destination=[worker]).active()"] = {**stats(ts), "job_listed": h.id in str(last)}
        res["list_running"] = q
        h.revoke(terminate=True, signal="SIGTERM")
        common.wait_stopped(key, hb["pid"], timeout=10)
        common.hb_remove(key)
    finally:
        w.stop()
    common.save("celery", res)


if __name__ == "__main__":
    main()
