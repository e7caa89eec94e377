"""Reading what a command shows on a pseudo-terminal, for CLI tests that answer prompts."""

from __future__ import annotations

import os
import select
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
