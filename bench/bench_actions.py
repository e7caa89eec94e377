"""Actions used by the benchmarks: a loop whose ``finally`` records when it ran.

Each run gets a 16-byte slot in a memory-mapped file: [started_at, finally_at] as float64
``time.monotonic()`` values (CLOCK_MONOTONIC is shared by all processes on the machine).
"""

from __future__ import annotations

import asyncio
import mmap
import struct
import time
from pathlib import Path
from typing import Any

from taskwarden import action
from taskwarden.runtime.handle import AsyncTaskHandle

SLOT = struct.Struct("dd")


def _record(path: str, slot: int, offset: int) -> None:
    with Path(path).open("r+b") as f, mmap.mmap(f.fileno(), 0) as mm:
        struct.pack_into("d", mm, slot * SLOT.size + offset, time.monotonic())


@action("bench:loop")
async def loop_async(task: AsyncTaskHandle, path: str, slot: int, seconds: float = 60.0) -> None:
    """Sleep in 1 ms units on the event loop until cancelled."""
    _record(path, slot, 0)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await task.sleep(0.001)
    finally:
        _record(path, slot, 8)


def _loop_blocking(task: Any, path: str, slot: int, seconds: float = 60.0) -> None:
    """Sleep in 1 ms units on a worker thread or in a worker process until cancelled."""
    _record(path, slot, 0)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            task.sleep(0.001)
    finally:
        _record(path, slot, 8)


action("bench:loop-thread", executor="thread")(_loop_blocking)
action("bench:loop-process", executor="process")(_loop_blocking)


@action("bench:idle")
async def idle(task: AsyncTaskHandle) -> None:
    """Wait, doing nothing, until cancelled: the least a running task can hold."""
    await asyncio.get_running_loop().create_future()


@action("bench:local-tree")
async def local_tree(
    task: AsyncTaskHandle, children: int, duration: float = 3600.0, idle: bool = False
) -> None:
    """``children`` children on this node only (fills one node of a cluster): ``test:sleep``
    ones, or with ``idle`` ones that only wait."""
    if idle:
        await asyncio.gather(*(task.spawn("bench:idle") for _ in range(children)))
        return
    await asyncio.gather(
        *(task.spawn("test:sleep[c]", {"duration": f"{int(duration)}s"}) for _ in range(children))
    )
