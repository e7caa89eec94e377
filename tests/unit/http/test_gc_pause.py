"""CyclicGcPause: nesting, and leaving a collector that was already off alone."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from taskwarden.http.gc_pause import CyclicGcPause


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


def test_nested_pauses_enable_again_only_after_the_outermost() -> None:
    gc.enable()
    pause = CyclicGcPause()
    with pause:
        assert not gc.isenabled()
        with pause:
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    with CyclicGcPause():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_error_inside_still_enables_again() -> None:
    gc.enable()
    pause = CyclicGcPause()
    with pytest.raises(RuntimeError), pause:
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_hold_and_release_across_requests() -> None:
    gc.enable()
    pause = CyclicGcPause()
    first = pause.hold()
    second = pause.hold()
    pause.release(first)
    assert not gc.isenabled()
    pause.release(second)
    assert gc.isenabled()


async def test_a_pause_ends_on_its_own_after_the_limit() -> None:
    gc.enable()
    pause = CyclicGcPause(max_pause_s=0.05)
    held = pause.hold()
    assert not gc.isenabled()
    # A timer due after the pause's own: by then the pause has expired.
    later = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.06, later.set_result, None)
    await later
    assert gc.isenabled()
    # The late release of the expired hold must not end a newer pause.
    newer = pause.hold()
    pause.release(held)
    assert not gc.isenabled()
    pause.release(newer)
    assert gc.isenabled()
