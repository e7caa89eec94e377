"""What runs inside a process-executor worker: the task handle and the worker's entry point.

Kept small and import-light: the forkserver preloads it, so every worker starts with it loaded.
Frames to the parent are ``kind byte + payload`` sent with ``Connection.send_bytes``; the only
frame the parent sends is the cancel reason as UTF-8.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import orjson

from taskwarden.errors import ActionFailedError, TaskCancelledError, TaskwardenError, es_type_of

__all__ = ["ERROR", "RESULT", "STATUS", "ProcessTaskHandle", "run_worker"]

STATUS = b"S"  # payload: orjson of the status dict (or null)
RESULT = b"R"  # payload: pickle of the return value
ERROR = b"E"  # payload: pickle of (TaskwardenError, formatted traceback)

_PARENT_GONE = "node process exited"
_KILL_AFTER_MAX = 5.0


class ProcessTaskHandle:
    """The task as a worker process sees it: status, cancellation checks, and sleep."""

    __slots__ = ("_conn", "_reason", "_recv_lock", "_send_lock", "_status", "action", "id")

    def __init__(self, conn: Connection, task_id: str, action: str) -> None:
        self.id = task_id
        self.action = action
        self._conn = conn
        self._reason: str | None = None
        self._status: dict[str, Any] | None = None
        self._recv_lock = threading.Lock()
        self._send_lock = threading.Lock()

    @property
    def cancelled(self) -> bool:
        return self._wait_cancel(0.0)

    @property
    def cancel_reason(self) -> str | None:
        self._wait_cancel(0.0)
        return self._reason

    def check_cancelled(self) -> None:
        """Raise TaskCancelledError once the node asked this task to stop."""
        if self._wait_cancel(0.0):
            raise TaskCancelledError(f"task cancelled [{self._reason}]")

    def sleep(self, seconds: float) -> None:
        """Block up to ``seconds``; wake at once and raise TaskCancelledError on cancellation."""
        self.check_cancelled()
        if self._wait_cancel(max(0.0, seconds)):
            raise TaskCancelledError(f"task cancelled [{self._reason}]")

    @property
    def status(self) -> dict[str, Any] | None:
        return self._status

    @status.setter
    def status(self, value: dict[str, Any] | None) -> None:
        """Send the status to the node; it must be JSON-able (checked here, not at render time)."""
        try:
            payload = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:
            raise TypeError(f"task status must be JSON-able: {exc}") from None
        self._status = value
        self.send_frame(STATUS, payload)

    def send_frame(self, kind: bytes, payload: bytes) -> None:
        """Send one frame; with the node gone there is no one to tell, so the frame is dropped."""
        with self._send_lock:
            try:
                self._conn.send_bytes(kind + payload)
            except OSError:
                self._reason = self._reason or _PARENT_GONE

    def _wait_cancel(self, timeout: float) -> bool:
        """True once a cancel arrived; waits on the pipe itself, so a cancel wakes it at once."""
        if self._reason is not None:
            return True
        try:
            if not self._conn.poll(timeout):
                return False
        except OSError:
            self._reason = _PARENT_GONE
            return True
        with self._recv_lock:
            if self._reason is None:
                try:
                    self._reason = self._conn.recv_bytes().decode("utf-8", "replace")
                except (EOFError, OSError):
                    self._reason = _PARENT_GONE
        return True


def run_worker(
    conn: Connection,
    fn: Callable[..., Any],
    kwargs: dict[str, Any],
    task_id: str,
    action: str,
    grace: float,
) -> None:
    """Worker entry point: call ``fn(handle, **kwargs)`` and send back its result or error."""
    # The node stops its workers itself; Ctrl-C on the node must not cut their cleanup short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    finished = threading.Event()
    _watch_node(conn, grace, finished)
    handle = ProcessTaskHandle(conn, task_id, action)
    try:
        try:
            result = fn(handle, **kwargs)
        except Exception as exc:
            handle.send_frame(ERROR, _encode_error(exc))
            return
        try:
            payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            error = ActionFailedError(
                f"the result of process task [{task_id}] cannot be pickled: {exc}",
                es_type="illegal_state_exception",
            )
            handle.send_frame(ERROR, _encode_error(error))
            return
        handle.send_frame(RESULT, payload)
    finally:
        finished.set()
        conn.close()


def _encode_error(exc: Exception) -> bytes:
    """Pickle ``exc`` as the TaskwardenError the node will raise, with the child's traceback."""
    # A cancellation is the expected way out; skip the costly traceback on that path.
    trace = "" if isinstance(exc, TaskCancelledError) else "".join(traceback.format_exception(exc))
    error: TaskwardenError
    if isinstance(exc, TaskwardenError):
        error = exc
    else:
        error = ActionFailedError(str(exc) or type(exc).__name__, es_type=es_type_of(exc))
    try:
        payload = pickle.dumps((error, trace), protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(payload)
    except Exception:
        # A subclass with its own constructor may not survive the trip; keep type and reason.
        fallback = ActionFailedError(error.reason, es_type=error.type, status=error.http_status)
        payload = pickle.dumps((fallback, trace), protocol=pickle.HIGHEST_PROTOCOL)
    return payload


def _watch_node(conn: Connection, grace: float, finished: threading.Event) -> None:
    """If the node dies, stop this worker as the node would have: grace, SIGTERM, SIGKILL.

    Workers keep the forkserver alive (they inherit its liveness pipe), so nothing else would
    end a worker that never checks for cancellation once its node is gone.
    """
    hangup = getattr(select, "POLLRDHUP", None)
    if hangup is None:
        return
    # A copy of the descriptor: closing the connection at the end must not wake the watch.
    watched = os.dup(conn.fileno())

    def watch() -> None:
        poller = select.poll()
        poller.register(watched, hangup)
        events = 0
        while not events & (hangup | select.POLLHUP | select.POLLERR):
            events = sum(event for _, event in poller.poll())
        if finished.wait(grace):
            return
        os.kill(os.getpid(), signal.SIGTERM)
        if not finished.wait(min(grace, _KILL_AFTER_MAX)):
            os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="taskwarden-node-watch", daemon=True).start()
