"""RemoteChildren: one request per parent, node and loop turn; each line resolves one child."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from taskwarden.cluster.children import MAX_BATCH_CHILDREN, RemoteChildren
from taskwarden.cluster.nodes import NodeInfo
from taskwarden.cluster.transport import NodeTransport, ParentRef
from taskwarden.errors import NodeNotConnectedError, TaskCancelledError
from taskwarden.tasks import TaskId

NODE = NodeInfo(node_id="n2", name="two", host="127.0.0.1", port=1, version="0")
PARENT = ParentRef(TaskId("n1", 7), "test:sleep", {"X-Opaque-Id": "o"}, True)


class ScriptedTransport(NodeTransport):
    """Answers child batches from a script: each batch gets the lines ``answer`` returns."""

    def __init__(self) -> None:
        super().__init__("secret")
        self.batches: list[list[tuple[str, orjson.Fragment]]] = []
        self.release = asyncio.Event()
        self.sent = asyncio.Event()
        self.end_early = False

    async def run_children(
        self, node: NodeInfo, parent: ParentRef, children: list[tuple[str, orjson.Fragment]]
    ) -> AsyncIterator[list[dict[str, Any]]]:
        self.batches.append(children)
        self.sent.set()
        await self.release.wait()
        lines: list[dict[str, Any]] = []
        for index, (action, params) in enumerate(children):
            if self.end_early and index > 0:
                break
            if action == "fail":
                lines.append({"i": index, "status": 400, "error": {
                    "type": "task_cancelled_exception", "reason": "task cancelled [by user request]"
                }})
            else:
                lines.append({"i": index, "response": orjson.loads(orjson.dumps(params))})
        yield lines


async def test_children_started_in_one_turn_travel_in_one_request() -> None:
    transport = ScriptedTransport()
    children = RemoteChildren(transport)
    runs = [children.start(NODE, PARENT, "ok", {"n": n}) for n in range(5)]
    runs.append(children.start(NODE, PARENT, "fail", {}))
    await transport.sent.wait()
    transport.release.set()
    results = await asyncio.gather(*runs, return_exceptions=True)
    assert len(transport.batches) == 1 and len(transport.batches[0]) == 6
    assert results[:5] == [{"n": n} for n in range(5)]
    assert isinstance(results[5], TaskCancelledError)
    assert results[5].reason == "task cancelled [by user request]"


async def test_a_full_batch_starts_another() -> None:
    transport = ScriptedTransport()
    children = RemoteChildren(transport)
    runs = [
        children.start(NODE, PARENT, "ok", {})
        for _ in range(MAX_BATCH_CHILDREN + 1)
    ]
    await asyncio.sleep(0)
    transport.release.set()
    await asyncio.gather(*runs)
    assert [len(b) for b in transport.batches] == [MAX_BATCH_CHILDREN, 1]


async def test_children_without_an_answer_fail_with_a_node_error() -> None:
    transport = ScriptedTransport()
    transport.end_early = True
    children = RemoteChildren(transport)
    runs = [children.start(NODE, PARENT, "ok", {}) for _ in range(2)]
    await asyncio.sleep(0)
    transport.release.set()
    first, second = await asyncio.gather(*runs, return_exceptions=True)
    assert first == {}
    assert isinstance(second, NodeNotConnectedError)


async def test_a_node_declared_gone_fails_its_waiting_children_at_once() -> None:
    transport = ScriptedTransport()  # never released: the node hangs
    children = RemoteChildren(transport)
    run = children.start(NODE, PARENT, "ok", {})
    await transport.sent.wait()
    children.node_gone("n2", "left the cluster")
    with pytest.raises(NodeNotConnectedError, match="left the cluster"):
        await run
    await children.close()


async def test_an_unexpected_failure_reading_the_stream_fails_the_children() -> None:
    class BrokenTransport(ScriptedTransport):
        async def run_children(
            self, node: NodeInfo, parent: ParentRef, children: list[tuple[str, orjson.Fragment]]
        ) -> AsyncIterator[list[dict[str, Any]]]:
            raise RuntimeError("broken")
            yield []  # an async generator, like the real one

    children = RemoteChildren(BrokenTransport())
    with pytest.raises(NodeNotConnectedError, match="RuntimeError: broken"):
        await asyncio.wait_for(children.start(NODE, PARENT, "ok", {}), 10)
