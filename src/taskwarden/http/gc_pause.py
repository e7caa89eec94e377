"""Pausing Python's cyclic garbage collector while one large response is built.

A listing of many tasks creates tens of thousands of short-lived containers; collections that
run while they are alive promote them, which soon triggers a full collection over every object
the running tasks hold (hundreds of milliseconds with 10k tasks). The containers are freed by
reference counting once the response is encoded, so the collector has nothing to gain meanwhile.
"""

from __future__ import annotations

import gc
from types import TracebackType

__all__ = ["CyclicGcPause"]


class CyclicGcPause:
    """Re-entrant pause: the collector runs again once the outermost user is done (loop thread)."""

    def __init__(self) -> None:
        self._depth = 0
        self._was_enabled = False

    def __enter__(self) -> None:
        if self._depth == 0:
            self._was_enabled = gc.isenabled()
            gc.disable()
        self._depth += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0 and self._was_enabled:
            gc.enable()
