"""Hot threads for Python: which threads of this node burn CPU (or wait), and where, as text in
Elasticsearch's ``_nodes/hot_threads`` layout.

Per-thread times come from the OS (``/proc/self/task/<tid>/schedstat`` on Linux: nanoseconds on
CPU and waiting for a CPU; psutil's coarser thread times elsewhere). Stacks come from sampling
every Python thread with ``sys._current_frames()``. Each thread is labelled with the tasks it runs;
the event-loop thread also names the asyncio tasks it was busy with, and worker processes that
run tasks are reported too (their stacks through ``py-spy dump`` when it is installed).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psutil

from taskwarden.diagnostics.request import HotThreadsRequest
from taskwarden.errors import IllegalArgumentError
from taskwarden.runtime.asyncrun import AsyncRun
from taskwarden.tasks.info import format_iso_millis
from taskwarden.timevalue import format_time_value

__all__ = ["WorkOnThreads", "hot_threads_report"]

_SNAPSHOT_GAP_S = 0.01
_LOOP_SAMPLE_S = 0.002
_SAMPLING_SWITCH_S = 0.0002
_SAMPLING = threading.Lock()
# Frames where a thread waits for work: such a thread is idle, whatever it did before.
_IDLE_FRAMES = frozenset({
    ("threading.py", "wait"),
    ("threading.py", "_wait_for_tstate_lock"),
    ("queue.py", "get"),
    ("selectors.py", "select"),
    ("thread.py", "_worker"),  # concurrent.futures' pool worker waiting for a job
    ("connection.py", "wait"),
})


@dataclass(frozen=True)
class WorkOnThreads:
    """What runs where on this node, read at sampling time: task labels per thread and process."""

    thread_tasks: Callable[[], Mapping[int, list[str]]]
    process_tasks: Callable[[], Mapping[int, str]]
    loop: asyncio.AbstractEventLoop
    loop_thread: int


@dataclass
class _Times:
    """Nanoseconds a thread spent on a CPU and runnable but waiting for one."""

    cpu: int
    runnable: int


@dataclass
class _Hot:
    name: str
    ident: int | None
    cpu: int
    runnable: int
    labels: list[str]
    pid: int | None = None

    def metric(self, kind: str, interval: int) -> int:
        if kind == "wait":
            return max(0, interval - self.cpu - self.runnable)
        if kind == "block":
            return self.runnable
        return self.cpu + self.runnable


def hot_threads_report(request: HotThreadsRequest, work: WorkOnThreads, now_millis: int) -> str:
    """The report body (without the ``:::`` node line); blocks for the interval and snapshots."""
    if request.type == "mem":
        raise IllegalArgumentError(
            "thread allocated memory is not supported by the Python runtime"
        )
    me = threading.get_ident()
    threads: dict[int, threading.Thread] = {}
    natives: dict[int, int] = {}
    for live in threading.enumerate():
        if live.ident is not None and live.ident != me and live.native_id is not None:
            threads[live.ident] = live
            natives[live.native_id] = live.ident
    workers = dict(work.process_tasks())
    # One sampling at a time: the switch interval is process-wide, and concurrent runs would
    # restore each other's values.
    with _SAMPLING:
        switch_interval = sys.getswitchinterval()
        # Threads hand over the interpreter lock often while sampling: samples then land where
        # a thread really is, not only where it happens to release the lock.
        sys.setswitchinterval(_SAMPLING_SWITCH_S)
        try:
            before = _thread_times(natives)
            before_procs = _process_times(workers)
            loop_tasks = _watch_event_loop(
                work.loop, work.loop_thread, request.interval_nanos / 1e9
            )
            after = _thread_times(natives)
            after_procs = _process_times(workers)
            labels = work.thread_tasks()
            stacks = _snapshots(request.snapshots)
        finally:
            sys.setswitchinterval(switch_interval)

    hot: list[_Hot] = []
    for native, ident in natives.items():
        if native not in before or native not in after:
            continue
        hot.append(_Hot(
            threads[ident].name, ident,
            after[native].cpu - before[native].cpu,
            after[native].runnable - before[native].runnable,
            list(labels.get(ident, [])),
        ))
    for pid, label in workers.items():
        if pid in before_procs and pid in after_procs:
            hot.append(_Hot(f"worker process {pid}", None,
                            after_procs[pid] - before_procs[pid], 0, [label], pid=pid))

    interval = request.interval_nanos
    if request.type == "cpu" and request.sort == "cpu":
        hot.sort(key=lambda h: h.cpu, reverse=True)
    else:
        hot.sort(key=lambda h: h.metric(request.type, interval), reverse=True)
    if request.ignore_idle_threads:
        hot = [h for h in hot if not _idle(h, stacks, request.type)]
    lines = [
        f"Hot threads at {format_iso_millis(now_millis)}, interval={format_time_value(interval)}, "
        f"busiestThreads={request.threads}, ignoreIdleThreads="
        f"{'true' if request.ignore_idle_threads else 'false'}:",
        "",
    ]
    for thread in hot[: request.threads]:
        lines.append(_usage_line(thread, request.type, interval))
        if thread.labels:
            lines.append("  tasks: " + ", ".join(f"[{label}]" for label in thread.labels))
        if thread.ident == work.loop_thread and loop_tasks:
            lines.extend(_busiest_asyncio_tasks(loop_tasks))
        if thread.pid is not None:
            lines.extend(_process_stack(thread.pid))
        elif thread.ident is not None:
            lines.extend(_grouped_stacks(stacks.get(thread.ident, []), request.snapshots))
        lines.append("")
    return "\n".join(lines) + "\n"


def _usage_line(thread: _Hot, kind: str, interval: int) -> str:
    def pct(nanos: int) -> float:
        return 100.0 * nanos / interval if interval else 0.0

    if kind == "cpu":
        total = thread.cpu + thread.runnable
        return (
            f"{pct(total):4.1f}% [cpu={pct(thread.cpu):1.1f}%, other={pct(thread.runnable):1.1f}%]"
            f" ({format_time_value(total)} out of {format_time_value(interval)}) cpu usage by "
            f"thread '{thread.name}'"
        )
    value = thread.metric(kind, interval)
    return (
        f"{pct(value):4.1f}% ({format_time_value(value)} out of {format_time_value(interval)}) "
        f"{kind} usage by thread '{thread.name}'"
    )


def _thread_times(natives: Mapping[int, int]) -> dict[int, _Times]:
    times: dict[int, _Times] = {}
    for native in natives:
        try:
            run, waited, _ = Path(f"/proc/self/task/{native}/schedstat").read_text().split()[:3]
            times[native] = _Times(int(run), int(waited))
        except (OSError, ValueError):
            continue
    if len(times) < len(natives):
        for entry in psutil.Process().threads():
            if entry.id in natives and entry.id not in times:
                times[entry.id] = _Times(int((entry.user_time + entry.system_time) * 1e9), 0)
    return times


def _process_times(pids: Mapping[int, str]) -> dict[int, int]:
    times: dict[int, int] = {}
    for pid in pids:
        try:
            cpu = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        times[pid] = int((cpu.user + cpu.system) * 1e9)
    return times


def _watch_event_loop(
    loop: asyncio.AbstractEventLoop, loop_thread: int, seconds: float
) -> list[str | None]:
    """Every 2 ms for ``seconds``: the asyncio task the event loop runs (None between tasks)."""
    seen: list[str | None] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        current = asyncio.current_task(loop)
        if current is None:
            seen.append(None)
        else:
            frame = sys._current_frames().get(loop_thread)
            seen.append(_describe_asyncio_task(current, frame))
        time.sleep(min(left, _LOOP_SAMPLE_S))
    return seen


def _snapshots(count: int) -> dict[int, list[tuple[str, ...]]]:
    """``count`` stack dumps of every thread, 10 ms apart."""
    stacks: dict[int, list[tuple[str, ...]]] = {}
    for index in range(count):
        if index:
            time.sleep(_SNAPSHOT_GAP_S)
        for ident, frame in sys._current_frames().items():
            stacks.setdefault(ident, []).append(_stack(frame))
    return stacks


def _stack(frame: FrameType | None) -> tuple[str, ...]:
    """Frames innermost first, ``module.qualname(file.py:line)`` like a Java stack trace."""
    frames: list[str] = []
    while frame is not None:
        code = frame.f_code
        module = frame.f_globals.get("__name__", "?")
        frames.append(f"{module}.{code.co_qualname}({Path(code.co_filename).name}:{frame.f_lineno})")
        frame = frame.f_back
    return tuple(frames)


def _idle(thread: _Hot, stacks: Mapping[int, list[tuple[str, ...]]], kind: str) -> bool:
    if thread.pid is not None:
        return kind == "cpu" and thread.cpu == 0
    if kind == "cpu" and thread.cpu == 0:
        return True
    snapshots = stacks.get(thread.ident or -1, [])
    return bool(snapshots) and all(s and _is_idle_frame(s[0]) for s in snapshots)


def _is_idle_frame(frame: str) -> bool:
    qualname, _, where = frame.partition("(")
    filename = where.split(":", 1)[0]
    return (filename, qualname.rsplit(".", 1)[-1]) in _IDLE_FRAMES


def _grouped_stacks(snapshots: list[tuple[str, ...]], total: int) -> list[str]:
    """Identical stack bottoms grouped: ``k/n snapshots sharing following m elements``."""
    lines: list[str] = []
    done = [False] * len(snapshots)
    # Deepest stacks first: a shallow one (an idle event loop) would otherwise claim every
    # deeper snapshot that merely starts from the same frames.
    order = sorted(range(len(snapshots)), key=lambda k: -len(snapshots[k]))
    for position, i in enumerate(order):
        if done[i]:
            continue
        stack = snapshots[i]
        best, similar = 1, list[int]()
        for j in order[position + 1:]:
            if done[j]:
                continue
            shared = _shared_bottom(stack, snapshots[j])
            if shared > best:
                best, similar = shared, []
            if shared == best:
                similar.append(j)
        for j in similar:
            done[j] = True
        if not similar:
            lines.append("  unique snapshot")
            lines.extend(f"    {frame}" for frame in stack)
        else:
            lines.append(f"  {len(similar) + 1}/{total} snapshots sharing following {best} elements")
            lines.extend(f"    {frame}" for frame in stack[len(stack) - best:])
    return lines


def _shared_bottom(left: tuple[str, ...], right: tuple[str, ...]) -> int:
    shared = 0
    for a, b in zip(reversed(left), reversed(right), strict=False):
        if a != b:
            break
        shared += 1
    return shared


def _describe_asyncio_task(task: asyncio.Task[object], frame: FrameType | None) -> str:
    """The running task's name and the function the event-loop thread is in."""
    where = f" in {frame.f_code.co_qualname}" if frame is not None else ""
    coro = task.get_coro()
    name = coro.label if isinstance(coro, AsyncRun) else task.get_name()
    return f"{name}{where}"


def _busiest_asyncio_tasks(seen: list[str | None]) -> list[str]:
    running = Counter(name for name in seen if name is not None)
    lines = [f"  busiest asyncio tasks on the event loop ({len(seen)} samples over the interval):"]
    for name, count in running.most_common(5):
        lines.append(f"    {count}/{len(seen)} samples running [{name}]")
    if not running:
        lines.append("    none: the event loop ran no task when sampled")
    return lines


def _process_stack(pid: int) -> list[str]:
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        return ["  (stack of a worker process: install py-spy to sample it)"]
    try:
        dumped = subprocess.run(
            [spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"  (py-spy could not sample process {pid}: {exc})"]
    if dumped.returncode != 0:
        reason = (dumped.stderr or dumped.stdout).strip().splitlines()[-1:] or ["unknown error"]
        return [f"  (py-spy could not sample process {pid}: {reason[0]})"]
    return ["  py-spy dump:"] + [f"    {line}" for line in dumped.stdout.splitlines() if line]
