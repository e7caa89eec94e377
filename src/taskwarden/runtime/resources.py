"""Per-task resource usage (``resource_stats`` in detailed task info): CPU time and memory.

Measured where the task's code runs: the CPU clock of each worker thread while it runs the
task; the CPU time and resident memory of the task's worker process; and for asyncio tasks the
event-loop thread's CPU time during each step of the action's coroutine (approximate: a step
also pays for the callbacks it triggers, and memory is not attributed per coroutine).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psutil

__all__ = ["TaskUsage"]


class TaskUsage:
    """One task's usage so far; calling it gives the ``resource_stats`` object."""

    __slots__ = ("_live", "_pid", "_process", "loop_cpu", "loop_steps", "thread_cpu", "thread_runs")

    def __init__(self) -> None:
        self.loop_cpu = 0
        self.loop_steps = 0
        self.thread_cpu = 0
        self.thread_runs = 0
        # Worker threads running the task now; created on first use (most tasks never need it).
        self._live: dict[int, tuple[int, int]] | None = None
        self._pid: int | None = None
        self._process: tuple[int, int] | None = None

    def thread_started(self) -> None:
        """Called on the worker thread as it starts running the task."""
        clock = time.pthread_getcpuclockid(threading.get_ident())
        if self._live is None:
            self._live = {}
        self._live[threading.get_ident()] = (clock, time.clock_gettime_ns(clock))
        self.thread_runs += 1

    def thread_ended(self) -> None:
        """Called on the worker thread as it finishes running the task."""
        assert self._live is not None
        clock, started = self._live.pop(threading.get_ident())
        self.thread_cpu += time.clock_gettime_ns(clock) - started

    def process_started(self, pid: int) -> None:
        self._pid = pid

    def process_ended(self) -> None:
        """Read the worker's final figures while it can still be read (before it is reaped)."""
        self._read_process()
        self._pid = None

    def __call__(self) -> dict[str, Any]:
        cpu = self.loop_cpu + self.thread_cpu
        live = list(self._live.values()) if self._live else []
        for clock, started in live:
            try:
                cpu += time.clock_gettime_ns(clock) - started
            except OSError:
                continue
        total: dict[str, Any] = {"cpu_time_in_nanos": cpu}
        if self._pid is not None:
            self._read_process()
        if self._process is not None:
            total["cpu_time_in_nanos"] += self._process[0]
            total["memory_in_bytes"] = self._process[1]
        return {
            "total": total,
            "thread_info": {"thread_executions": self.thread_runs, "active_threads": len(live)},
        }

    def _read_process(self) -> None:
        if self._pid is None:
            return
        try:
            process = psutil.Process(self._pid)
            with process.oneshot():
                times, memory = process.cpu_times(), process.memory_info()
        except psutil.Error:
            return
        self._process = (int((times.user + times.system) * 1e9), int(memory.rss))
