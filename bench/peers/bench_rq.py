"""RQ: rq.command.send_stop_job_command().  Worker: default rq.Worker (fork one work-horse per job)."""
import os
import sys
import time

import common
from common import WorkerProc, measure_cancel, stats, summarize_cancel, time_calls
from redis import Redis
from rq import Queue, Worker
from rq.command import send_stop_job_command
from rq.registry import StartedJobRegistry

DB = 2
URL = f"redis://{common.REDIS_HOST}:{common.REDIS_PORT}/{DB}"
WORKER_NAME = "rqbench"
VENV_BIN = os.path.dirname(sys.executable)


def main():
    common.harness_init()
    common.flushdb(DB)
    conn = Redis(host=common.REDIS_HOST, port=common.REDIS_PORT, db=DB)
    q = Queue("bench", connection=conn)
    w = WorkerProc("rq", [os.path.join(VENV_BIN, "rq"), "worker", "bench", "-u", URL, "-n", WORKER_NAME,
                          "--logging_level", "WARNING"])
    res = {"peer": "rq", "versions": {p: common.pkg_version(p) for p in ("rq", "redis")},
           "worker": "rq worker (default rq.Worker: forks a work-horse per job), 1 worker process",
           "variants": {}, "raw": {}}
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and WORKER_NAME not in [x.name for x in Worker.all(connection=conn)]:
            time.sleep(0.05)
        sub_triv = lambda key: q.enqueue("rq_tasks.trivial", key)
        assert common.warmup(sub_triv), "warm-up failed"

        common.measure_start_both(w, sub_triv, res, "rq.Worker (fork per job)", label="rq")

        submit = lambda key, d: q.enqueue("rq_tasks.long_job", key, d, job_timeout=int(common.STOP_TIMEOUT + 60))

        def status_done(job):
            st = job.get_status(refresh=True)
            st = getattr(st, "value", st)
            return st if st in ("stopped", "failed", "finished", "canceled") else None

        name = "send_stop_job_command(conn, job_id)"
        print(f"rq: {name}", flush=True)
        recs = measure_cancel(w, submit, lambda job: send_stop_job_command(conn, job.id), common.REPS,
                              seed=2000, label=name, status_done=status_done)
        res["raw"][name] = recs
        res["variants"][name] = summarize_cancel(recs)

        # --- list running jobs
        key = common.new_key()
        common.hb_create(key)
        job = submit(key, common.JOB_SECONDS)
        hb = common.wait_running(key)
        w.note_job_pid(hb["pid"])
        time.sleep(0.2)
        reg = StartedJobRegistry(queue=q)
        qres = {}
        ts, last = time_calls(lambda: reg.get_job_ids())
        qres["StartedJobRegistry(queue=q).get_job_ids()"] = {**stats(ts), "job_listed": job.id in str(last)}
        ts, last = time_calls(lambda: [(x.name, x.get_current_job_id()) for x in Worker.all(connection=conn)])
        qres["[w.get_current_job_id() for w in Worker.all()]"] = {**stats(ts), "job_listed": job.id in str(last)}
        res["list_running"] = qres
        send_stop_job_command(conn, job.id)
        common.wait_stopped(key, hb["pid"], timeout=10)
        common.hb_remove(key)
    finally:
        w.stop()
    common.save("rq", res)


if __name__ == "__main__":
    main()
