"""Dramatiq + dramatiq-abort: abort(message_id) in AbortMode.ABORT.
Worker: dramatiq --processes 1 --threads 2."""
import os
import sys

import common
from common import WorkerProc, measure_cancel, summarize_cancel
from dramatiq_abort import abort
from dramatiq_abort.middleware import AbortMode
from dramatiq_tasks import abortable, long_job, trivial

DB = 4
VENV_BIN = os.path.dirname(sys.executable)


def main():
    common.harness_init()
    common.flushdb(DB)
    w = WorkerProc("dramatiq", [os.path.join(VENV_BIN, "dramatiq"), "dramatiq_tasks", "--processes", "1",
                                "--threads", "2", "--queues", "bench"])
    res = {"peer": "dramatiq",
           "versions": {p: common.pkg_version(p) for p in ("dramatiq", "dramatiq-abort", "redis")},
           "worker": "dramatiq --processes 1 --threads 2, RedisBroker, Abortable(RedisBackend)",
           "variants": {}, "raw": {},
           "list_running": {"(none)": {"note": "Dramatiq has no API to list running messages"}}}
    try:
        sub_triv = lambda key: trivial.send(key)
        assert common.warmup(sub_triv), "warm-up failed"
        common.measure_start_both(w, sub_triv, res, "--processes 1 --threads 2 (worker_timeout 1000 ms)", label="dramatiq")

        # The abort watcher thread only starts watching a message's abort key on its next cycle
        # (it sleeps 1 s when idle / BLPOPs with a 1 s timeout), so the delay between job start and
        # cancel matters: measured with the common settle range and with a late one (>= 1.5 s).
        for i, (name, rng) in enumerate([
                ("dramatiq_abort.abort(message_id, mode=AbortMode.ABORT)", (common.SETTLE_MIN, common.SETTLE_MAX)),
                ("dramatiq_abort.abort(...) issued 1.5-2.5 s after start", (1.5, 2.5))]):
            print(f"dramatiq: {name}", flush=True)
            recs = measure_cancel(w, lambda key, d: long_job.send(key, d),
                                  lambda msg: abort(msg.message_id, middleware=abortable, mode=AbortMode.ABORT),
                                  common.REPS, seed=4000 + i, label=name, settle_range=rng)
            res["raw"][name] = recs
            res["variants"][name] = summarize_cancel(recs)
    finally:
        w.stop()
    common.save("dramatiq", res)


if __name__ == "__main__":
    main()
