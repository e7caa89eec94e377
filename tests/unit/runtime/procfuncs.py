"""Functions the process-executor tests run in worker processes (importable by qualified name)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from taskwarden.errors import IllegalArgumentError


def describe(task: Any, *, a: int, b: int) -> dict[str, Any]:
    return {"sum": a + b, "id": task.id, "action": task.action, "pid": os.getpid()}


def raise_value_error(task: Any, *, message: str) -> None:
    raise ValueError(message)


def raise_illegal_argument(task: Any) -> None:
    raise IllegalArgumentError("bad [x]", metadata={"index": "i1"})


def exit_abruptly(task: Any, *, code: int) -> None:
    os._exit(code)


def return_unpicklable(task: Any) -> Any:
    return lambda: None


def return_bytes(task: Any, *, size: int) -> bytes:
    return b"x" * size


def survive_sigint(task: Any) -> str:
    os.kill(os.getpid(), signal.SIGINT)
    return "alive"


def report_then_sleep(task: Any, *, marker: str, seconds: float) -> None:
    """Report progress twice, then sleep cooperatively; ``finally`` leaves a marker file."""
    try:
        task.status = {"phase": "loading", "done": 1}
        task.status = {"phase": "sleeping", "done": 2}
        task.sleep(seconds)
    finally:
        Path(marker).write_text("cleaned up")


def check_in_busy_loop(task: Any, *, marker: str) -> None:
    """Spin on check_cancelled() only; ``finally`` leaves a marker file."""
    try:
        task.status = {"phase": "spinning"}
        while True:
            task.check_cancelled()
    finally:
        Path(marker).write_text("cleaned up")


def spin_forever(task: Any) -> None:
    """Never looks at cancellation."""
    task.status = {"phase": "spinning"}
    while True:
        pass


def ignore_sigterm_forever(task: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    task.status = {"phase": "ignoring"}
    while True:
        time.sleep(1)
