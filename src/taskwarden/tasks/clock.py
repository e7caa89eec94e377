"""Clocks are injected wherever behaviour depends on time, so tests can control it."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Wall time in epoch milliseconds (or nanoseconds) and monotonic time in nanoseconds."""

    def epoch_millis(self) -> int: ...

    def epoch_nanos(self) -> int: ...

    def monotonic_nanos(self) -> int: ...


class SystemClock:
    """The real clock."""

    __slots__ = ()

    def epoch_millis(self) -> int:
        return time.time_ns() // 1_000_000

    # The C functions themselves: every task registration reads both, and a Python method
    # around them would cost more than the read.
    epoch_nanos = staticmethod(time.time_ns)
    monotonic_nanos = staticmethod(time.monotonic_ns)


class ManualClock:
    """A clock that moves only when told to (for tests)."""

    def __init__(self, epoch_millis: int = 1_700_000_000_000, monotonic_nanos: int = 0) -> None:
        self._epoch_millis = epoch_millis
        self._monotonic_nanos = monotonic_nanos

    def epoch_millis(self) -> int:
        return self._epoch_millis

    def epoch_nanos(self) -> int:
        return self._epoch_millis * 1_000_000

    def monotonic_nanos(self) -> int:
        return self._monotonic_nanos

    def advance(self, seconds: float) -> None:
        self._monotonic_nanos += int(seconds * 1e9)
        self._epoch_millis += int(seconds * 1e3)


SYSTEM_CLOCK = SystemClock()
