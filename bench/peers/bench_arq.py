"""arq: Job.abort().  Two configurations: arq defaults (worker poll_delay=0.5 s, abort(poll_delay=0.5))
and a small poll delay (worker poll_delay=0.01 s, abort(poll_delay=0.01)).  Runs in its own venv
(arq 0.28 requires redis-py < 6, Celery/kombu 5.7 requires redis-py >= 6.4)."""
import asyncio
import os
import sys
import threading
import time

import common
from arq import create_pool
from arq.connections import RedisSettings
from common import WorkerProc, measure_cancel, stats, summarize_cancel, time_calls

DB = 3
VENV_BIN = os.path.dirname(sys.executable)
ABORT_TIMEOUT = common.STOP_TIMEOUT


class Loop:
    """A private asyncio loop in a thread, so the sync harness can call arq's async API."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.t = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.t.start()

    def run(self, coro, timeout=None):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.t.join(5)


def run_config(L, pool, poll_delay, res, seed):
    tag = f"poll_delay={poll_delay}"
    w = WorkerProc(f"arq-{poll_delay}", [os.path.join(VENV_BIN, "arq"), "arq_tasks.WorkerSettings"],
                   env={"ARQ_POLL_DELAY": str(poll_delay)})
    try:
        sub_triv = lambda key: L.run(pool.enqueue_job("trivial", key), 10)
        assert common.warmup(sub_triv), "warm-up failed"
        common.measure_start_both(w, sub_triv, res, f"worker poll_delay={poll_delay}s", label=f"arq {tag}")

        submit = lambda key, d: L.run(pool.enqueue_job("long_job", key, d), 10)
        name = f"Job.abort(poll_delay={poll_delay}) with worker poll_delay={poll_delay}s"
        print(f"arq: {name}", flush=True)
        recs = measure_cancel(w, submit,
                              lambda job: L.run(job.abort(timeout=ABORT_TIMEOUT, poll_delay=poll_delay)),
                              common.REPS, seed=seed, label=name)
        res["raw"][name] = recs
        res["variants"][name] = summarize_cancel(recs)

        # arq has no 'list running jobs' API; the nearest: per-job Job.status() and ArqRedis.queued_jobs()
        key = common.new_key()
        common.hb_create(key)
        job = submit(key, common.JOB_SECONDS)
        hb = common.wait_running(key)
        w.note_job_pid(hb["pid"])
        time.sleep(0.2)
        ts, last = time_calls(lambda: L.run(job.status(), 10))
        res["list_running"][f"Job(id).status() per job [no list API] ({tag})"] = {
            **stats(ts), "job_listed": str(last) == "JobStatus.in_progress" or "in_progress" in str(last)}
        L.run(job.abort(timeout=10, poll_delay=0.01), 15)
        common.wait_stopped(key, hb["pid"], timeout=10)
        common.hb_remove(key)
    finally:
        w.stop()


def main():
    common.harness_init()
    common.flushdb(DB)
    L = Loop()
    pool = L.run(create_pool(RedisSettings(host=common.REDIS_HOST, port=common.REDIS_PORT, database=DB)), 10)
    res = {"peer": "arq", "versions": {p: common.pkg_version(p) for p in ("arq", "redis")},
           "worker": "arq worker (single asyncio process, max_jobs=10, allow_abort_jobs=True)",
           "variants": {}, "raw": {}, "list_running": {}}
    try:
        run_config(L, pool, 0.5, res, 3000)
        run_config(L, pool, 0.01, res, 3001)
    finally:
        try:
            L.run(pool.aclose(), 5)
        except Exception:
            pass
        L.close()
    common.save("arq", res)


if __name__ == "__main__":
    main()
