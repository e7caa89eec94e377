"""Reading what a command shows on a pseudo-terminal, for CLI tests of prompts and live views."""

from __future__ import annotations

import os
import select
import subprocess
import time


def _read_some(fd: int, wait: float) -> bytes | None:
    """What the terminal has within ``wait`` seconds (maybe nothing); None once it is closed."""
    readable, _, _ = select.select([fd], [], [], wait)
    if not readable:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:  # the command exited and closed the terminal
        return None


def read_until(fd: int, wanted: bytes, timeout: float = 20.0) -> bytes:
    """What a terminal shows until ``wanted`` appears (or the deadline passes)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        chunk = _read_some(fd, 0.2)
        if chunk is None:
            break
        seen += chunk
    return seen


def exit_code_reading(fd: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """Wait for ``proc`` to exit while reading its terminal: a command that redraws the screen
    blocks on a full terminal buffer (a few frames) when nobody reads it."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        if _read_some(fd, 0.1) is None:  # nothing more to read: just wait
            return proc.wait(max(0.0, deadline - time.monotonic()))
    return proc.returncode
