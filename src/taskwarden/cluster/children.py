"""Child tasks across nodes, in batches: one streamed request per parent, node and loop turn.

A parent that fans out starts its remote children in the same event-loop turn; sending them as
one request, and streaming their ends back on it, costs one HTTP exchange per node instead of
one per child (a tree of thousands of children would otherwise spend its cancel parsing replies).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from taskwarden.cluster.nodes import NodeInfo
from taskwarden.cluster.transport import NodeTransport, ParentRef
from taskwarden.errors import NodeNotConnectedError, TaskwardenError, error_from_dict
from taskwarden.runtime.handle import ChildEnd
from taskwarden.runtime.runner import Outcome
from taskwarden.tasks import CancelReason, Task, TaskId

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_CHILDREN", "ChildRun", "RemoteChildren"]

log = logging.getLogger(__name__)

MAX_BATCH_CHILDREN = 1000
# Well under the request body limit of the receiving node.
MAX_BATCH_BYTES = 256 * 1024


class _Batch:
    """Children of one parent for one node, collected during one event-loop turn."""

    __slots__ = ("children", "futures", "node", "parent", "reader", "size")

    def __init__(self, node: NodeInfo, parent: ParentRef) -> None:
        self.node = node
        self.parent = parent
        # Params encoded once, as they are added: their size bounds the batch, and the request
        # embeds the bytes as they are.
        self.children: list[tuple[str, orjson.Fragment]] = []
        self.futures: list[ChildEnd] = []
        self.size = 0
        self.reader: asyncio.Task[None] | None = None

    @property
    def full(self) -> bool:
        return len(self.children) >= MAX_BATCH_CHILDREN or self.size >= MAX_BATCH_BYTES

    def add(self, action: str, params: dict[str, Any]) -> ChildEnd:
        encoded = orjson.dumps(params, option=orjson.OPT_NON_STR_KEYS)
        end = ChildEnd(loop=asyncio.get_running_loop())
        self.children.append((action, orjson.Fragment(encoded)))
        self.futures.append(end)
        self.size += len(action) + len(encoded)
        return end

    def resolve(self, line: dict[str, Any]) -> None:
        index = line.get("i")
        if not isinstance(index, int) or not 0 <= index < len(self.futures):
            return
        future = self.futures[index]
        if future.done():
            return
        error = line.get("error")
        if isinstance(error, dict):
            future.set_exception(error_from_dict(error, int(line.get("status", 500))))
        else:
            future.set_result(line.get("response"))

    def fail_rest(self, error: TaskwardenError) -> None:
        for future in self.futures:
            if not future.done():
                future.set_exception(error)


class RemoteChildren:
    """Starts children on other nodes for local parents; each answer resolves one ``run``."""

    def __init__(self, transport: NodeTransport) -> None:
        self._transport = transport
        self._filling: dict[tuple[TaskId, str], _Batch] = {}
        self._sent: set[_Batch] = set()

    def start(
        self, node: NodeInfo, parent: ParentRef, action: str, params: dict[str, Any]
    ) -> ChildEnd:
        """Run ``action`` on ``node`` as a child of ``parent``; its end is its response or error."""
        key = (parent.task_id, node.node_id)
        batch = self._filling.get(key)
        if batch is None or batch.full:
            batch = _Batch(node, parent)
            self._filling[key] = batch
            asyncio.get_running_loop().call_soon(self._send, key, batch)
        try:
            return batch.add(action, params)
        except TypeError as exc:  # params that are not JSON
            return ChildEnd.failed(exc)

    def node_gone(self, node_id: str, reason: str) -> None:
        """Children on a node declared gone end now, with a node failure, even if it hangs."""
        for batch in [b for b in self._sent if b.node.node_id == node_id]:
            batch.fail_rest(NodeNotConnectedError(
                f"[{batch.node.name}][{batch.node.http_address}] {reason}",
                metadata={"node_id": node_id},
            ))
            if batch.reader is not None:
                batch.reader.cancel()

    async def close(self) -> None:
        readers = [b.reader for b in self._sent if b.reader is not None]
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    def _send(self, key: tuple[TaskId, str], batch: _Batch) -> None:
        if self._filling.get(key) is batch:
            del self._filling[key]
        if all(f.done() for f in batch.futures):
            return
        self._sent.add(batch)
        batch.reader = asyncio.get_running_loop().create_task(self._read(batch))

    async def _read(self, batch: _Batch) -> None:
        try:
            async for lines in self._transport.run_children(batch.node, batch.parent,
                                                             batch.children):
                for line in lines:
                    batch.resolve(line)
            batch.fail_rest(NodeNotConnectedError(
                f"[{batch.node.name}][{batch.node.http_address}] closed the stream of child "
                "tasks before they ended",
                metadata={"node_id": batch.node.node_id},
            ))
        except TaskwardenError as exc:
            batch.fail_rest(exc)
        except asyncio.CancelledError:
            batch.fail_rest(NodeNotConnectedError(
                f"[{batch.node.name}][{batch.node.http_address}] stream of child tasks closed",
                metadata={"node_id": batch.node.node_id},
            ))
            raise
        except Exception as exc:
            # A bug must not leave the parent waiting forever on children nobody will report.
            log.exception("reading child tasks from node [%s] failed", batch.node.node_id)
            batch.fail_rest(NodeNotConnectedError(
                f"[{batch.node.name}][{batch.node.http_address}] stream of child tasks failed: "
                f"{type(exc).__name__}: {exc}",
                metadata={"node_id": batch.node.node_id},
            ))
        finally:
            self._sent.discard(batch)


class ChildRun:
    """The serving side: children another node asked for, started here, ending in any order."""

    def __init__(self, cancel: Callable[[Task, CancelReason], None]) -> None:
        self._cancel = cancel
        self._running: dict[int, Task] = {}
        self._ended: list[tuple[int, Outcome]] = []
        self._wake: asyncio.Event = asyncio.Event()
        self._count = 0

    def refused(self, index: int, error: TaskwardenError) -> None:
        """A child that could not start (banned parent, unknown action, bad parameters)."""
        self._count += 1
        self._finish(index, Outcome(error=error))

    def started(self, index: int, task: Task, outcome: asyncio.Future[Outcome]) -> None:
        self._count += 1
        self._running[index] = task
        outcome.add_done_callback(lambda done: self._finish(index, done.result()))

    def _finish(self, index: int, outcome: Outcome) -> None:
        self._running.pop(index, None)
        self._ended.append((index, outcome))
        self._wake.set()

    async def ends(self) -> AsyncIterator[list[tuple[int, Outcome]]]:
        """Ended children, in groups (all that ended since the last group), until none is left."""
        delivered = 0
        while delivered < self._count:
            await self._wake.wait()
            self._wake.clear()
            group, self._ended = self._ended, []
            delivered += len(group)
            if group:
                yield group

    def cancel_running(self, reason: CancelReason) -> None:
        """The asking node went away: nobody will collect these children, stop them."""
        for task in list(self._running.values()):
            self._cancel(task, reason)
