"""CyclicGcPause: nesting, and leaving a collector that was already off alone."""

from __future__ import annotations

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
