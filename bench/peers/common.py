"""Shared code for the peer cancellation benchmark.

Two halves live here:

* job side  -- the loop every peer's long job runs, and the trivial job used
  for submit-to-start latency.  Both report through a 64-byte heartbeat file
  (mmap'd, one per job) so that every peer is observed the same way, with no
  extra Redis traffic inside the job loop.
* harness side -- worker process management (start / stop by PID), the
  measurement procedures and the statistics.

All timestamps are time.monotonic() (CLOCK_MONOTONIC, system-wide on Linux,
so comparable across the harness and worker processes).
"""
from __future__ import annotations

import asyncio
import json
import mmap
import os
import random
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time
import uuid

REDIS_HOST = "127.0.0.1"
REDIS_PORT = int(os.environ.get("PEER_REDIS_PORT", "6390"))
HB_DIR = os.environ.get("PEER_HB_DIR", "/dev/shm/peerbench")
HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.environ.get("PEER_RESULTS_DIR", os.path.join(HERE, "results"))

JOB_SECONDS = float(os.environ.get("PEER_JOB_SECONDS", "60"))  # natural length of the long job
SLEEP_UNIT = 0.001          # one unit of work = time.sleep(0.001) / asyncio.sleep(0.001)
MAX_ITERS = 200_000         # hard bound on loop iterations (60 s needs ~56k)
REPS = int(os.environ.get("PEER_REPS", "60"))                 # cancel repetitions per variant
NONCANCEL_REPS = int(os.environ.get("PEER_NONCANCEL_REPS", "2"))  # reps for modes that do not stop a running job
START_N = int(os.environ.get("PEER_START_N", "50"))           # trivial jobs for submit-to-start (back-to-back)
START_RAND_S = float(os.environ.get("PEER_START_RAND_S", "1.0"))  # 'random arrival': pause U(0, this) before each submit
LIST_N = int(os.environ.get("PEER_LIST_N", "10"))             # calls of the list-running query
SETTLE_MIN, SETTLE_MAX = 0.05, 1.05   # random delay between "running" and cancel
STOP_TIMEOUT = JOB_SECONDS + 20.0     # max wait for a stop (covers natural completion)
RUNNING_TIMEOUT = 30.0                # max wait for the job to signal it is running
STALL_SECONDS = 5.0                   # heartbeat older than this while process alive => 'stalled'
POLL = 0.0005                         # harness polling period for the heartbeat file

# ---------------------------------------------------------------------------
# heartbeat file: pid, iters, first_ts, last_ts, finally_ts, outcome, exc name
# ---------------------------------------------------------------------------
_FMT = "<qqdddq32s"
_SIZE = struct.calcsize(_FMT)  # 80
OUTCOMES = {0: "none", 1: "completed", 2: "exception", 3: "cooperative-return", 4: "trivial"}


def hb_path(key: str) -> str:
    return os.path.join(HB_DIR, key + ".hb")


def new_key() -> str:
    return uuid.uuid4().hex


def hb_create(key: str) -> None:
    os.makedirs(HB_DIR, exist_ok=True)
    with open(hb_path(key), "wb") as f:
        f.write(b"\0" * _SIZE)


class Heartbeat:
    """Job-side writer.  Fields are written through memoryview casts (one aligned
    8-byte store each); struct.pack_into is NOT used because it zero-fills the
    target before packing, which a concurrent reader can observe."""

    def __init__(self, key: str):
        self._f = open(hb_path(key), "r+b")
        self._m = mmap.mmap(self._f.fileno(), _SIZE)
        self._raw = memoryview(self._m)
        self._q = self._raw[:48].cast("q")   # q[0]=pid q[1]=iters q[5]=outcome
        self._d = self._raw[:48].cast("d")   # d[2]=first_ts d[3]=last_ts d[4]=finally_ts

    def start(self, now: float) -> None:
        self._q[0] = os.getpid()
        self._d[2] = now

    def beat(self, i: int, now: float) -> None:
        self._d[3] = now
        self._q[1] = i

    def exc(self, name: str) -> None:
        b = name.encode()[:32]
        self._raw[48:48 + len(b)] = b

    def finish(self, now: float, outcome: int) -> None:
        self._q[5] = outcome
        self._d[4] = now

    def close(self) -> None:
        try:
            self._q.release()
            self._d.release()
            self._raw.release()
            self._m.close()
            self._f.close()
        except Exception:
            pass


def hb_read(key: str) -> dict | None:
    try:
        with open(hb_path(key), "rb") as f:
            raw = f.read(_SIZE)
    except FileNotFoundError:
        return None
    if len(raw) < _SIZE:
        return None
    pid, iters, first, last, fin, outcome, exc = struct.unpack(_FMT, raw)
    return {"pid": pid, "iters": iters, "first_ts": first, "last_ts": last,
            "finally_ts": fin, "outcome": OUTCOMES.get(outcome, str(outcome)),
            "exc": exc.rstrip(b"\0").decode(errors="replace")}


def hb_remove(key: str) -> None:
    try:
        os.unlink(hb_path(key))
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------------------
# job side
# ---------------------------------------------------------------------------

def run_loop_sync(key: str, duration: float, check=None) -> str:
    """The long job: loop of time.sleep(0.001) for `duration` seconds.

    `check` (optional) is the peer's cooperative cancellation check; it is
    called once per iteration and a True return ends the loop ('cooperative').
    The finally block records the moment the job's code stops.
    """
    hb = Heartbeat(key)
    t = time.monotonic()
    hb.start(t)
    deadline = t + duration
    outcome = 2
    try:
        i = 0
        while i < MAX_ITERS:
            i += 1
            now = time.monotonic()
            hb.beat(i, now)
            if now >= deadline:
                outcome = 1
                break
            if check is not None and check():
                outcome = 3
                break
            time.sleep(SLEEP_UNIT)
        else:
            outcome = 1
    except BaseException as e:  # record what interrupted us, then let it propagate
        hb.exc(type(e).__name__)
        raise
    finally:
        hb.finish(time.monotonic(), outcome)
        hb.close()
    return OUTCOMES[outcome]


async def run_loop_async(key: str, duration: float) -> str:
    """asyncio version (arq): loop of await asyncio.sleep(0.001)."""
    hb = Heartbeat(key)
    t = time.monotonic()
    hb.start(t)
    deadline = t + duration
    outcome = 2
    try:
        i = 0
        while i < MAX_ITERS:
            i += 1
            now = time.monotonic()
            hb.beat(i, now)
            if now >= deadline:
                outcome = 1
                break
            await asyncio.sleep(SLEEP_UNIT)
        else:
            outcome = 1
    except BaseException as e:
        hb.exc(type(e).__name__)
        raise
    finally:
        hb.finish(time.monotonic(), outcome)
        hb.close()
    return OUTCOMES[outcome]


def trivial_job(key: str) -> None:
    """Trivial job: its first statement records the start time."""
    now = time.monotonic()
    hb = Heartbeat(key)
    hb.start(now)
    hb.beat(1, now)
    hb.finish(time.monotonic(), 4)
    hb.close()


# ---------------------------------------------------------------------------
# harness side: processes
# ---------------------------------------------------------------------------

def pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # state is the field after the ')' that closes comm
    state = data[data.rfind(b")") + 2:data.rfind(b")") + 3]
    return state not in (b"Z", b"X")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def harness_init() -> None:
    """Harness processes only (never imported-side in workers): turn SIGTERM/SIGHUP into
    SystemExit so that `finally: worker.stop()` runs when run.sh's timeout fires."""
    def _exit(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)
    os.makedirs(HB_DIR, exist_ok=True)


class WorkerProc:
    """A peer worker started by the harness; stopped by its PID / process group."""

    def __init__(self, name: str, argv: list[str], env: dict | None = None):
        self.name = name
        self.argv = argv
        os.makedirs(RESULTS_DIR, exist_ok=True)
        self.log_path = os.path.join(RESULTS_DIR, f"worker-{name}.log")
        e = dict(os.environ)
        e["PYTHONPATH"] = HERE + os.pathsep + e.get("PYTHONPATH", "")
        e["PYTHONUNBUFFERED"] = "1"
        if env:
            e.update(env)
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n=== start {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(argv, cwd=HERE, env=e, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.job_pids: set[int] = set()   # pids seen executing jobs (e.g. RQ horses live in their own pgid)
        # run.sh's exit trap kills any group/pid listed here that is still alive
        self.pidfile = os.path.join(RESULTS_DIR, f"worker-{name}.pids")
        with open(self.pidfile, "w") as f:
            f.write(f"pgid {self.pid}\n")

    def note_job_pid(self, pid: int) -> None:
        if pid and pid != os.getpid() and pid not in self.job_pids:
            self.job_pids.add(pid)
            with open(self.pidfile, "a") as f:
                f.write(f"pid {pid}\n")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the worker's process group (pgid == worker pid), then SIGKILL; then leftover job pids."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        # anything else still in the worker's group (children that outlived the parent)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in sorted(self.job_pids):
            cmd = _cmdline(pid)
            if pid_alive(pid) and ("python" in cmd or "peervenv" in cmd):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._log.close()
        try:
            os.unlink(self.pidfile)
        except FileNotFoundError:
            pass


# ---------------------------------------------------------------------------
# harness side: measurements
# ---------------------------------------------------------------------------

def wait_running(key: str, timeout: float = RUNNING_TIMEOUT) -> dict | None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        hb = hb_read(key)
        if hb and hb["iters"] >= 1:
            return hb
        time.sleep(POLL)
    return None


def wait_stopped(key: str, pid: int, timeout: float = STOP_TIMEOUT) -> dict:
    """Poll until the job's code has stopped. Definition (same for every peer):

    t_stop = finally_ts   if the job's finally block ran (cleanup ran), else
           = last_ts      (last heartbeat) once the process that ran the job is gone.
    A heartbeat older than STALL_SECONDS with the process alive is reported as 'stalled'.
    """
    end = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        hb = hb_read(key)
        if hb["finally_ts"] > 0:
            return {"how": "finally", "t_stop": hb["finally_ts"], "t_detect": now, "hb": hb}
        if not pid_alive(pid):
            hb = hb_read(key)
            if hb["finally_ts"] > 0:
                return {"how": "finally", "t_stop": hb["finally_ts"], "t_detect": now, "hb": hb}
            return {"how": "process-exited", "t_stop": hb["last_ts"], "t_detect": now, "hb": hb}
        if now - hb["last_ts"] > STALL_SECONDS:
            return {"how": "stalled", "t_stop": hb["last_ts"], "t_detect": now, "hb": hb}
        if now > end:
            return {"how": "timeout", "t_stop": None, "t_detect": now, "hb": hb}
        time.sleep(POLL)


STATUS_POLL = 0.001


def _call_here(fn) -> dict:
    """Make the cancel call on this thread, t0 taken just before it: no thread start-up or GIL
    hand-over between t0 and the call is counted (that cost 0.3-0.5 ms per call on a 2-core VM,
    the same for every system). t_stop comes from the job's own heartbeat, so the stop can be
    looked for once the call has returned, even if the call blocked until after it."""
    box = {"t_call": time.monotonic()}
    try:
        box["ret"] = repr(fn())[:120]
    except Exception as e:
        box["err"] = f"{type(e).__name__}: {e}"[:200]
    box["t_return"] = time.monotonic()
    return box


def _poll_status_in_thread(box: dict, status_done, status_timeout: float = STOP_TIMEOUT):
    """Once the cancel call has returned, poll the peer's status API every STATUS_POLL s (in a
    thread, while the main thread looks for the stop) until it reports the job finished."""
    def run():
        end = box["t_call"] + status_timeout
        while time.monotonic() < end:
            try:
                v = status_done()
            except Exception as e:
                box["status_err"] = f"{type(e).__name__}: {e}"[:200]
                v = None
            if v:
                box["t_status"] = time.monotonic()
                box["status"] = str(v)[:60]
                break
            time.sleep(STATUS_POLL)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def measure_cancel(worker: WorkerProc, submit, cancel, reps: int, seed: int,
                   duration: float = JOB_SECONDS, after_rep=None, label: str = "",
                   status_done=None, settle_range: tuple = (SETTLE_MIN, SETTLE_MAX)) -> list[dict]:
    """submit(key, duration) -> handle ; cancel(handle) -> anything (may block);
    status_done(handle) -> falsy / terminal status string (optional).

    Per rep: submit, wait until the job signals running, sleep a seeded random
    settle in settle_range (default [SETTLE_MIN, SETTLE_MAX]), t0 = monotonic() and at once
    cancel() on this thread, then poll until stopped.  Latency = t_stop - t0.
    """
    rng = random.Random(seed)
    out = []
    for r in range(reps):
        key = new_key()
        hb_create(key)
        t_sub = time.monotonic()
        handle = submit(key, duration)
        hb = wait_running(key)
        if hb is None:
            out.append({"rep": r, "error": "job did not signal running within %.0fs" % RUNNING_TIMEOUT})
            print(f"  [{label}] rep {r}: NOT RUNNING", flush=True)
            continue
        worker.note_job_pid(hb["pid"])
        settle = rng.uniform(*settle_range)
        time.sleep(settle)
        box = _call_here(lambda: cancel(handle))
        t0 = box["t_call"]
        th = None if status_done is None else _poll_status_in_thread(box, lambda: status_done(handle))
        st = wait_stopped(key, hb["pid"])
        if th is not None:
            th.join(timeout=max(0.0, STOP_TIMEOUT + 5 - (time.monotonic() - t0)))
        # did the OS process that ran the job survive the cancel? (checked >= 0.3 s after the stop;
        # if it exits meanwhile, when it was first seen gone is recorded)
        t_exit = None
        check_until = (st["t_stop"] or 0) + 0.3
        while True:
            if not pid_alive(hb["pid"]):
                t_exit = time.monotonic()
                break
            if time.monotonic() >= check_until:
                break
            time.sleep(POLL)
        proc_survived = t_exit is None
        fin = st["hb"]
        rec = {
            "rep": r, "settle_s": settle, "start_s": hb["first_ts"] - t_sub,
            "how": st["how"], "cleanup_ran": fin["finally_ts"] > 0,
            "outcome": fin["outcome"], "exc": fin["exc"],
            "latency_s": (st["t_stop"] - t0) if st["t_stop"] else None,
            "detect_lag_s": (st["t_detect"] - st["t_stop"]) if st["t_stop"] else None,
            # upper bound: when the harness observed the stop (finally seen / process gone)
            "latency_upper_s": (st["t_detect"] - t0) if st["t_stop"] else None,
            "ran_before_cancel_s": t0 - fin["first_ts"],
            "iters": fin["iters"],
            "call_return_s": (box["t_return"] - t0) if "t_return" in box else None,
            "call_ret": box.get("ret"), "call_err": box.get("err"),
            "status_s": (box["t_status"] - t0) if "t_status" in box else None,
            "status": box.get("status"), "status_err": box.get("status_err"),
            "proc_survived": proc_survived,
            "proc_exit_s": (t_exit - t0) if t_exit is not None else None,
        }
        out.append(rec)
        lat = rec["latency_s"]
        print(f"  [{label}] rep {r}: {st['how']:<14} latency={lat if lat is None else round(lat*1000,1)} ms "
              f"cleanup={rec['cleanup_ran']} exc={rec['exc']} call_return="
              f"{None if rec['call_return_s'] is None else round(rec['call_return_s']*1000,1)} ms", flush=True)
        if after_rep:
            after_rep(rec)
        hb_remove(key)
    return out


def measure_start(worker: WorkerProc, submit_trivial, n: int = START_N, label: str = "",
                  pause_max: float = 0.0, seed: int = 0) -> list[float]:
    """Sequential trivial jobs: latency = job's first statement - just before submit call.
    Each job is submitted after the previous one finished, plus a seeded random pause
    U(0, pause_max) (0 = back-to-back)."""
    rng = random.Random(seed)
    lat = []
    for _ in range(n):
        if pause_max:
            time.sleep(rng.uniform(0.0, pause_max))
        key = new_key()
        hb_create(key)
        t_sub = time.monotonic()
        submit_trivial(key)
        end = t_sub + RUNNING_TIMEOUT
        hb = None
        while time.monotonic() < end:
            hb = hb_read(key)
            if hb and hb["finally_ts"] > 0:
                break
            time.sleep(POLL)
        if hb and hb["first_ts"] > 0:
            worker.note_job_pid(hb["pid"])
            lat.append(hb["first_ts"] - t_sub)
        hb_remove(key)
    print(f"  [{label}] submit-to-start (pause U(0,{pause_max})s): {len(lat)}/{n} ok, median "
          f"{(statistics.median(lat)*1000 if lat else float('nan')):.2f} ms", flush=True)
    return lat


def time_calls(fn, n: int = LIST_N) -> tuple[list[float], object]:
    ts, last = [], None
    for _ in range(n):
        t = time.monotonic()
        last = fn()
        ts.append(time.monotonic() - t)
    return ts, last


def measure_start_both(worker: WorkerProc, submit_trivial, res: dict, config: str, label: str = "") -> None:
    res.setdefault("submit_to_start", {})[config] = stats(measure_start(worker, submit_trivial, START_N, label))
    res.setdefault("submit_to_start_random", {})[config] = stats(
        measure_start(worker, submit_trivial, START_N, label, pause_max=START_RAND_S, seed=777))


def warmup(submit_trivial, n: int = 3, timeout: float = 60.0) -> bool:
    """Run trivial jobs until n succeed (bounded); proves the worker is consuming."""
    ok = 0
    end = time.monotonic() + timeout
    while ok < n and time.monotonic() < end:
        key = new_key()
        hb_create(key)
        submit_trivial(key)
        e2 = min(end, time.monotonic() + 20)
        while time.monotonic() < e2:
            hb = hb_read(key)
            if hb and hb["finally_ts"] > 0:
                ok += 1
                break
            time.sleep(0.005)
        hb_remove(key)
    return ok >= n


def stats(xs: list[float]) -> dict:
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return {"n": 0}
    k95 = max(0, min(len(xs) - 1, int(-(-0.95 * len(xs) // 1)) - 1))  # nearest-rank p95
    return {"n": len(xs), "min": xs[0], "median": statistics.median(xs), "p95": xs[k95], "max": xs[-1]}


def summarize_cancel(recs: list[dict]) -> dict:
    ok = [r for r in recs if "error" not in r]
    lat = [r["latency_s"] for r in ok if r["latency_s"] is not None]
    calls = [r["call_return_s"] for r in ok if r["call_return_s"] is not None]
    sts = [r["status_s"] for r in ok if r.get("status_s") is not None]
    return {
        "reps": len(recs), "measured": len(ok),
        "latency": stats(lat),
        "latency_upper": stats([r["latency_upper_s"] for r in ok if r.get("latency_upper_s") is not None]),
        "cleanup_ran": sum(1 for r in ok if r["cleanup_ran"]),
        "how": sorted({r["how"] for r in ok}),
        "outcomes": sorted({r["outcome"] for r in ok}),
        "exc": sorted({r["exc"] for r in ok if r["exc"]}),
        "stopped_before_natural_end": sum(1 for r in ok if r["outcome"] != "completed"
                                          and r["how"] in ("finally", "process-exited")),
        "call_return": stats(calls),
        "call_errors": sorted({r["call_err"] for r in ok if r.get("call_err")}),
        "status_visible": stats(sts),
        "statuses": sorted({r["status"] for r in ok if r.get("status")}),
        "status_before_stop": sum(1 for r in ok if r.get("status_s") is not None and r["latency_s"] is not None
                                  and r["status_s"] < r["latency_s"]),
        "proc_survived": sum(1 for r in ok if r.get("proc_survived")),
        "proc_exit": stats([r["proc_exit_s"] for r in ok if r.get("proc_exit_s") is not None]),
        # how long after the job's stop the cancel call returned (only reps where it returned later)
        "return_after_stop": stats([r["call_return_s"] - r["latency_s"] for r in ok
                                    if r["call_return_s"] is not None and r["latency_s"] is not None
                                    and r["call_return_s"] >= r["latency_s"]]),
    }


def save(peer: str, data: dict) -> str:
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{peer}.json")
    data = dict(data)
    data["python"] = sys.version.split()[0]
    data["saved_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
    with open(path, "w") as f:
        json.dump(data, f, indent=1, default=str)
    print(f"saved {path}", flush=True)
    return path


def flushdb(db: int) -> None:
    import redis
    redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db).flushdb()


def pkg_version(name: str) -> str:
    from importlib.metadata import version
    try:
        return version(name)
    except Exception:
        return "?"
