"""Hot threads internals: snapshot grouping, report framing, and the process-wide switch interval."""

from __future__ import annotations

import asyncio
import sys
import threading

from taskwarden.diagnostics.hot_threads import WorkOnThreads, _grouped_stacks, hot_threads_report
from taskwarden.diagnostics.request import HotThreadsRequest, node_block

LOOP = ("asyncio.runners.Runner.run(runners.py:118)", "__main__.<module>(x.py:1)")
BURN = ("m._burn(m.py:9)", "m.job(m.py:20)", *LOOP)


def test_deep_snapshots_group_before_a_shallow_one_claims_them() -> None:
    lines = _grouped_stacks([LOOP, BURN, BURN, BURN], 4)
    assert lines == [
        "  3/4 snapshots sharing following 4 elements",
        *(f"    {frame}" for frame in BURN),
        "  unique snapshot",
        *(f"    {frame}" for frame in LOOP),
    ]


def test_snapshots_differing_at_the_top_share_their_common_bottom() -> None:
    other = ("m._burn(m.py:10)", *BURN[1:])
    lines = _grouped_stacks([BURN, other], 2)
    assert lines[0] == "  2/2 snapshots sharing following 3 elements"
    assert lines[1:] == [f"    {frame}" for frame in BURN[1:]]


def test_node_block_indents_every_line_and_ends_with_a_blank_line() -> None:
    assert node_block("{n1}{id}", "Hot threads at x:\n\n1% usage\n") == (
        "::: {n1}{id}\n   Hot threads at x:\n   \n   1% usage\n\n"
    )


async def test_concurrent_samplings_restore_the_switch_interval() -> None:
    before = sys.getswitchinterval()
    work = WorkOnThreads(lambda: {}, lambda: {}, asyncio.get_running_loop(), threading.get_ident())
    request = HotThreadsRequest(interval_nanos=20_000_000, snapshots=2)
    reports = await asyncio.gather(
        *(asyncio.to_thread(hot_threads_report, request, work, 0) for _ in range(3))
    )
    assert all(r.startswith("Hot threads at 1970-01-01T00:00:00.000Z, interval=20ms") for r in reports)
    assert sys.getswitchinterval() == before
