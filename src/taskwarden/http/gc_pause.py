"""Pausing Python's cyclic garbage collector while a request handles many tasks at once.

A listing of many tasks creates tens of thousands of short-lived containers, and cancelling a
large tree leaves tens of thousands of objects in reference cycles (asyncio keeps exceptions,
tracebacks and frames pointing at each other). Collections that run meanwhile promote the live
ones and soon trigger a full collection over every object the running tasks hold: hundreds of
milliseconds inside the request. Paused, the collector does that work once, after the answer has
been sent. A pause never lasts longer than ``max_pause_s``, so a request that waits long (a
cancel with ``wait_for_completion``) cannot keep the collector off.
"""

from __future__ import annotations

import asyncio
import gc
from types import TracebackType

__all__ = ["CyclicGcPause"]


class CyclicGcPause:
    """Re-entrant pause for the event-loop thread: the collector runs again once the last
    holder releases it, or ``max_pause_s`` after the pause began, whichever comes first."""

    def __init__(self, max_pause_s: float = 1.0) -> None:
        self._max_pause_s = max_pause_s
        self._depth = 0
        self._was_enabled = False
        self._epoch = 0
        self._expiry: asyncio.TimerHandle | None = None
        self._held: list[int] = []

    def hold(self) -> int:
        """Pause (or join the pause under way); pass the result to :meth:`release`."""
        if self._depth == 0:
            self._was_enabled = gc.isenabled()
            gc.disable()
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                self._expiry = loop.call_later(self._max_pause_s, self._expire)
        self._depth += 1
        return self._epoch

    def release(self, epoch: int) -> None:
        """End one hold; a hold from before an expired pause has nothing left to end."""
        if epoch != self._epoch or self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0:
            self._resume()

    def _expire(self) -> None:
        self._expiry = None
        self._epoch += 1
        self._depth = 0
        self._resume()

    def _resume(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self._was_enabled:
            gc.enable()

    def __enter__(self) -> None:
        self._held.append(self.hold())

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release(self._held.pop())
