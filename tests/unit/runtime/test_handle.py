"""ChildEnd: a parent's wait on its children outlasts a cancel of the parent's code."""

from __future__ import annotations

import asyncio

import pytest

from taskwarden.errors import NoSuchNodeError
from taskwarden.runtime.handle import ChildEnd


async def test_a_cancelled_waiter_still_waits_for_every_child_then_sees_the_cancel() -> None:
    loop = asyncio.get_running_loop()
    first, second = ChildEnd(loop=loop), ChildEnd(loop=loop)
    waiting = asyncio.Event()

    async def parent() -> list[int]:
        waiting.set()
        return list(await asyncio.gather(first, second))

    job = asyncio.ensure_future(parent())
    await waiting.wait()
    assert job.cancel()
    first.set_result(1)
    # Let the loop run every callback the cancel and the first end scheduled.
    for _ in range(5):
        await asyncio.sleep(0)
    assert not job.done() and not first.cancelled() and not second.done()
    second.set_result(2)
    with pytest.raises(asyncio.CancelledError):
        await job


async def test_cancelling_a_child_end_is_refused() -> None:
    end = ChildEnd(loop=asyncio.get_running_loop())
    assert end.cancel() is False
    assert not end.done()


async def test_a_child_that_could_not_start_ends_with_its_refusal() -> None:
    end = ChildEnd.failed(NoSuchNodeError("No such node [x]"))
    assert end.done()
    with pytest.raises(NoSuchNodeError, match="No such node"):
        await end
