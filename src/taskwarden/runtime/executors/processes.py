"""Runs a module-level function in a worker process: a task can be stopped even if it never checks.

Stopping goes in three steps: a cooperative cancel message at once, SIGTERM after the grace
period, SIGKILL a little later. The event loop never blocks on a worker: the pipe and the
process sentinel are watched with ``add_reader``; starting and reaping happen on one control
thread (multiprocessing's bookkeeping of children is not safe to touch from two threads).
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext, ForkServerProcess
from pathlib import Path
from typing import Any

import orjson

from taskwarden.errors import (
    ActionFailedError,
    RejectedExecutionError,
    TaskCancelledError,
    TaskwardenError,
    es_type_of,
)
from taskwarden.runtime.executors import _process_worker
from taskwarden.runtime.resources import TaskUsage
from taskwarden.tasks import NODE_SHUTTING_DOWN, CancellableTask, CancelReason, Task

__all__ = ["ProcessExecutor"]

log = logging.getLogger(__name__)

_KILL_AFTER_MAX = 5.0
# On shutdown a worker gets this long to stop cooperatively before SIGTERM, then SIGKILL.
_SHUTDOWN_GRACE = 0.5
_SHUTDOWN_KILL_AFTER = 2.0
_READ_CHUNK = 1 << 20
_READS_PER_WAKEUP = 16

_LENGTH = struct.Struct("!i")
_LONG_LENGTH = struct.Struct("!Q")


def _main_script_imports() -> list[str]:
    """Modules the main script imports, for the forkserver to load once.

    Every worker re-runs a main script (not a ``-m`` module) to rebuild ``__main__``; with its
    imports already loaded in the forkserver that costs nothing. Only modules this process has
    imported are named, so the forkserver cannot fail on one.
    """
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    path = getattr(main, "__file__", None)
    if spec_name is not None or not isinstance(path, str):
        return []
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return [name for name in dict.fromkeys(names) if name in sys.modules]


class _FrameReader:
    """Incremental decoder of ``Connection.send_bytes`` frames (``!i`` length, or -1 and ``!Q``)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        while len(buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(buffer)
            header = _LENGTH.size
            if size == -1:
                if len(buffer) < header + _LONG_LENGTH.size:
                    break
                (size,) = _LONG_LENGTH.unpack_from(buffer, header)
                header += _LONG_LENGTH.size
            end = header + size
            if len(buffer) < end:
                break
            frames.append(bytes(buffer[header:end]))
            del buffer[:end]
        return frames


class _Worker:
    """One worker process as the node sees it: its pipe, its exit, and how it is stopped."""

    def __init__(
        self,
        task: Task,
        loop: asyncio.AbstractEventLoop,
        control: concurrent.futures.ThreadPoolExecutor,
        grace: float,
    ) -> None:
        self.task = task
        self.loop = loop
        self.grace = grace
        self.pid: int | None = None
        self.exitcode: int | None = None
        self.stop_reason: str | None = None
        self.job: asyncio.Task[Any] | None = None
        self.gone: asyncio.Future[None] = loop.create_future()
        self._control = control
        self._process: ForkServerProcess | None = None
        self._conn: Connection | None = None
        self._frames = _FrameReader()
        self._finished = False
        self._result: Any = None
        self._error: TaskwardenError | None = None
        self._exited = False
        self._cancel_sent = False
        self._term_at: float | None = None
        self._kill_after = 0.0
        self._timers: list[asyncio.TimerHandle] = []

    async def start(
        self, context: ForkServerContext, fn: Callable[..., Any], kwargs: dict[str, Any]
    ) -> None:
        """Start the process on the control thread and watch its pipe and sentinel."""
        parent_conn, child_conn = context.Pipe(duplex=True)
        process = context.Process(
            target=_process_worker.run_worker,
            args=(child_conn, fn, kwargs, str(self.task.id), self.task.action, self.grace),
            name=f"taskwarden-task-{self.task.id}",
        )
        try:
            await self.loop.run_in_executor(self._control, process.start)
        except Exception as exc:
            parent_conn.close()
            self.gone.set_result(None)
            raise ActionFailedError(
                f"failed to start a worker process for task [{self.task.id}]: {exc}",
                es_type=es_type_of(exc),
            ) from exc
        finally:
            child_conn.close()
        self._process, self._conn, self.pid = process, parent_conn, process.pid
        usage = self.task.resource_stats
        if isinstance(usage, TaskUsage) and process.pid is not None:
            usage.process_started(process.pid)
        os.set_blocking(parent_conn.fileno(), False)
        self.loop.add_reader(parent_conn.fileno(), self._on_readable)
        self.loop.add_reader(process.sentinel, self._on_exit)
        if self._term_at is not None:
            self._arm()

    def on_cancel(self, reason: CancelReason) -> None:
        self.request_stop(str(reason), self.grace, min(self.grace, _KILL_AFTER_MAX))

    def request_stop(self, reason: str, term_after: float, kill_after: float) -> None:
        """Ask the worker to stop now; SIGTERM after ``term_after``, then SIGKILL ``kill_after``."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._escalate(self.loop.time() + term_after, kill_after)

    def kill_now(self) -> None:
        self._escalate(self.loop.time(), 0.0)

    def outcome(self) -> Any:
        """The function's result, or the error ``run`` raises for this worker."""
        if self._error is not None:
            raise self._error
        if self._finished:
            return self._result
        if self.stop_reason is not None:
            raise TaskCancelledError(f"task cancelled [{self.stop_reason}]")
        raise ActionFailedError(
            f"worker process exited with code {self.exitcode}", es_type="worker_died_exception"
        )

    # stopping ---------------------------------------------------------------------------

    def _escalate(self, term_at: float, kill_after: float) -> None:
        """Arm SIGTERM at ``term_at`` (an earlier deadline already armed wins)."""
        if self._exited or (self._term_at is not None and self._term_at <= term_at):
            return
        self._term_at, self._kill_after = term_at, kill_after
        if self._process is not None:
            self._arm()

    def _arm(self) -> None:
        if self.stop_reason is not None and not self._cancel_sent:
            self._cancel_sent = True
            self._send_cancel(self.stop_reason)
        for timer in self._timers:
            timer.cancel()
        assert self._term_at is not None
        self._timers = [self.loop.call_at(self._term_at, self._terminate)]

    def _send_cancel(self, reason: str) -> None:
        assert self._conn is not None
        # A worker that is gone or closed its end cannot hear it; the signals still follow.
        with contextlib.suppress(OSError):
            self._conn.send_bytes(reason.encode("utf-8"))

    def _terminate(self) -> None:
        self._signal(signal.SIGTERM)
        self._timers.append(self.loop.call_later(self._kill_after, self._signal, signal.SIGKILL))

    def _signal(self, signum: int) -> None:
        process = self._process
        # The sentinel turns readable only after the forkserver reaped the pid: until then
        # the pid cannot have been reused by another process.
        if self._exited or process is None or self.pid is None or wait([process.sentinel], 0):
            return
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            return
        log.info("sent %s to the worker (pid %d) of task [%s]",
                 signal.Signals(signum).name, self.pid, self.task.id)

    # reading ----------------------------------------------------------------------------

    def _on_readable(self) -> None:
        self._drain(_READS_PER_WAKEUP)

    def _drain(self, max_reads: int | None) -> None:
        """Read what the pipe holds without blocking; stop watching it at end of file."""
        assert self._conn is not None
        fd = self._conn.fileno()
        reads = 0
        while max_reads is None or reads < max_reads:
            reads += 1
            try:
                data = os.read(fd, _READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.loop.remove_reader(fd)
                return
            for frame in self._frames.feed(data):
                self._on_frame(frame)

    def _on_frame(self, frame: bytes) -> None:
        kind, payload = frame[:1], memoryview(frame)[1:]
        if kind == _process_worker.STATUS:
            self.task.status = orjson.loads(payload)
            return
        if self._finished or self._error is not None:
            return
        try:
            if kind == _process_worker.RESULT:
                self._result = pickle.loads(payload)
                self._finished = True
            else:
                self._error, trace = pickle.loads(payload)
                log.debug("process task [%s] failed in its worker:\n%s", self.task.id, trace)
        except Exception as exc:
            self._error = ActionFailedError(
                f"cannot read what the worker of task [{self.task.id}] sent back: {exc}",
                es_type="illegal_state_exception",
            )
        # The function is done; a worker that does not exit (e.g. a stray thread) is stopped.
        self._escalate(self.loop.time() + self.grace, min(self.grace, _KILL_AFTER_MAX))

    # exit -------------------------------------------------------------------------------

    def _on_exit(self) -> None:
        process, conn = self._process, self._conn
        assert process is not None and conn is not None
        self._exited = True
        usage = self.task.resource_stats
        if isinstance(usage, TaskUsage):
            usage.process_ended()
        for timer in self._timers:
            timer.cancel()
        self.loop.remove_reader(process.sentinel)
        self._drain(None)
        self.loop.remove_reader(conn.fileno())
        conn.close()
        reaped = self.loop.run_in_executor(self._control, self._reap, process)
        reaped.add_done_callback(self._on_reaped)

    def _reap(self, process: ForkServerProcess) -> int | None:
        process.join()
        code = process.exitcode
        process.close()
        return code

    def _on_reaped(self, reaped: asyncio.Future[int | None]) -> None:
        if reaped.cancelled() or reaped.exception() is not None:
            log.warning("could not reap the worker of task [%s]", self.task.id)
        else:
            self.exitcode = reaped.result()
        if not self.gone.done():
            self.gone.set_result(None)


class ProcessExecutor:
    """Runs ``fn(handle, **kwargs)`` in forkserver worker processes, at most ``max_workers``."""

    def __init__(
        self, *, max_workers: int = 32, default_grace: float = 10.0, preload: Sequence[str] = ()
    ) -> None:
        """``preload``: modules (the node's ``--app`` modules) the forkserver imports once, so
        that a worker starts with its action's code loaded instead of importing it each time."""
        self.max_workers = max_workers
        self.default_grace = default_grace
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(
            list(dict.fromkeys([_process_worker.__name__, *_main_script_imports(), *preload]))
        )
        self._control = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="taskwarden-process-control"
        )
        self._seq = itertools.count()
        self._workers: dict[int, _Worker] = {}
        self._closed = False

    @property
    def running(self) -> int:
        """Number of live worker processes (including ones being started)."""
        return len(self._workers)

    def tasks_by_pid(self) -> dict[int, Task]:
        """Which task each live worker process (by pid) runs right now."""
        return {w.pid: w.task for w in self._workers.values() if w.pid is not None}

    def pid_of(self, task: Task) -> int | None:
        """The pid of ``task``'s live worker process, if it has one."""
        for worker in self._workers.values():
            if worker.task is task and worker.pid is not None:
                return worker.pid
        return None

    async def run(
        self,
        task: Task,
        fn: Callable[..., Any],
        kwargs: dict[str, Any],
        *,
        grace: float | None = None,
    ) -> Any:
        """Run ``fn`` in a new worker and return its result once the worker is gone."""
        if self._closed:
            raise RejectedExecutionError(
                f"rejected execution of process task [{task.id}]: executor is shut down"
            )
        if len(self._workers) >= self.max_workers:
            raise RejectedExecutionError(
                f"rejected execution of process task [{task.id}]: "
                f"{len(self._workers)} workers already running"
            )
        if isinstance(task, CancellableTask):
            task.check_cancelled()
        loop = asyncio.get_running_loop()
        grace_s = self.default_grace if grace is None else max(0.0, grace)
        worker = _Worker(task, loop, self._control, grace_s)
        key = next(self._seq)
        self._workers[key] = worker
        job = worker.job = loop.create_task(self._lifecycle(key, worker, fn, kwargs))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            # Whoever awaited us gave up: the worker must not outlive the call.
            worker.kill_now()
            await asyncio.wait([job])
            if not job.cancelled():
                job.exception()
            raise

    async def _lifecycle(
        self, key: int, worker: _Worker, fn: Callable[..., Any], kwargs: dict[str, Any]
    ) -> Any:
        task = worker.task
        try:
            await worker.start(self._context, fn, kwargs)
            if isinstance(task, CancellableTask):
                task.add_cancel_listener(worker.on_cancel)
            await worker.gone
            return worker.outcome()
        finally:
            if isinstance(task, CancellableTask):
                task.remove_cancel_listener(worker.on_cancel)
            self._workers.pop(key, None)

    async def shutdown(self) -> None:
        """Refuse new work, stop every worker (cooperatively, then by signal), wait until gone."""
        self._closed = True
        workers = list(self._workers.values())
        for worker in workers:
            worker.request_stop(str(NODE_SHUTTING_DOWN), _SHUTDOWN_GRACE, _SHUTDOWN_KILL_AFTER)
        jobs = [w.job for w in workers if w.job is not None]
        if jobs:
            await asyncio.wait(jobs)
        self._control.shutdown(wait=False)
