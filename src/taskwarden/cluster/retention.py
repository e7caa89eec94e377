"""ResultRetention: stored outcomes are deleted once older than the retention period.

Every node runs the cleanup on its own schedule; deleting is idempotent, so nodes sharing a
store need no coordination. Rows of tasks still running (journaled, not completed) stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from taskwarden.errors import TaskwardenError
from taskwarden.store import ClusterStore
from taskwarden.tasks import Clock

__all__ = ["DEFAULT_CLEANUP_INTERVAL_S", "DEFAULT_RETENTION_S", "ResultRetention"]

log = logging.getLogger(__name__)

DEFAULT_RETENTION_S = 7 * 24 * 3600.0
DEFAULT_CLEANUP_INTERVAL_S = 3600.0


class ResultRetention:
    """Deletes completed results stored more than ``retention_s`` ago, every ``interval_s``."""

    def __init__(
        self, store: ClusterStore, clock: Clock, *, retention_s: float, interval_s: float
    ) -> None:
        self.store = store
        self.clock = clock
        self.retention_s = retention_s
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def clean_once(self) -> int:
        """Delete what has expired now; returns how many results went."""
        cutoff = self.clock.epoch_millis() - int(self.retention_s * 1000)
        deleted = await self.store.delete_results_older_than(cutoff)
        if deleted:
            log.info("deleted %d stored task results older than %.0fs", deleted, self.retention_s)
        return deleted

    def start(self) -> None:
        """Run the cleanup now and then every interval (a negative retention keeps everything)."""
        if self.retention_s < 0 or self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="result-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.clean_once()
            except TaskwardenError as exc:
                log.warning("could not delete expired task results (retrying in %.0fs): %s",
                            self.interval_s, exc)
            await asyncio.sleep(self.interval_s)
