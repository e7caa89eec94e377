"""Huey: Result.revoke() on a running task (plain, and with a cooperative is_revoked() poll).
Consumer: huey_consumer -w 2 -k thread (defaults otherwise; RedisHuey uses blocking BRPOP)."""
import os
import sys

import common
from common import WorkerProc, measure_cancel, summarize_cancel
from huey_tasks import long_job, trivial

DB = 5
VENV_BIN = os.path.dirname(sys.executable)


def main():
    common.harness_init()
    common.flushdb(DB)
    w = WorkerProc("huey", [os.path.join(VENV_BIN, "huey_consumer"), "huey_tasks.huey", "-w", "2", "-k", "thread"])
    res = {"peer": "huey", "versions": {p: common.pkg_version(p) for p in ("huey", "redis")},
           "worker": "huey_consumer -w 2 -k thread (RedisHuey, blocking dequeue)",
           "variants": {}, "raw": {},
           "list_running": {"(none)": {"note": "Huey has no API to list running tasks (pending()/scheduled() list queued ones)"}}}
    try:
        sub_triv = lambda key: trivial(key)
        assert common.warmup(sub_triv), "warm-up failed"
        common.measure_start_both(w, sub_triv, res, "-w 2 -k thread (blocking BRPOP)", label="huey")

        variants = [
            ("Result.revoke() + cooperative huey.is_revoked(task) poll in the task (harness pattern)",
             lambda key, d: long_job(key, d, coop=True), common.REPS),
            ("Result.revoke() (no cooperative check)",
             lambda key, d: long_job(key, d, coop=False), common.NONCANCEL_REPS),
        ]
        for i, (name, sub, reps) in enumerate(variants):
            print(f"huey: {name}", flush=True)
            recs = measure_cancel(w, sub, lambda r: r.revoke(), reps, seed=5000 + i, label=name)
            res["raw"][name] = recs
            res["variants"][name] = summarize_cancel(recs)
    finally:
        w.stop()
    common.save("huey", res)


if __name__ == "__main__":
    main()
