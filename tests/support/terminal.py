"""Reading what a command shows on a pseudo-terminal, for CLI tests of prompts and live views."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import time


def read_until(fd: int, wanted: bytes, timeout: float = 20.0) -> bytes:
    """What a terminal shows until ``wanted`` appears (or the deadline passes)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        readable, _, _ = select.select([fd], [], [], 0.2)
        if readable:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the command exited and closed the terminal
                break
    return seen


def exit_code_reading(fd: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """Wait for ``proc`` to exit while reading its terminal: a command that redraws the screen
    blocks on a full terminal buffer (a few frames) when nobody reads it."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        readable, _, _ = select.select([fd], [], [], 0.1)
        if readable:
            with contextlib.suppress(OSError):  # the command exited and closed the terminal
                os.read(fd, 65536)
    return proc.returncode
