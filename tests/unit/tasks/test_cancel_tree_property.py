"""The cancel tree's invariant, checked on random trees and cancel sequences (hypothesis).

A task is cancelled exactly when it or one of its ancestors was cancelled, and a cancellable
child registered afterwards under any cancelled task is refused.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskwarden.errors import TaskCancelledError
from taskwarden.tasks import CancellationService, CancelReason, ManualClock, Task, TaskManager

# parents[i] is the index of task i's parent among tasks 0..i-1, or None for a root.
trees = st.integers(min_value=1, max_value=25).flatmap(
    lambda n: st.tuples(
        st.tuples(*(st.one_of(st.none(), st.integers(0, i - 1)) if i else st.none()
                    for i in range(n))),
        st.lists(st.integers(0, n - 1), max_size=6),
    )
)


def ancestors(parents: tuple[int | None, ...], index: int) -> list[int]:
    chain = []
    parent = parents[index]
    while parent is not None:
        chain.append(parent)
        parent = parents[parent]
    return chain


@settings(max_examples=150, deadline=None, database=None)
@given(trees)
def test_cancelled_exactly_when_self_or_an_ancestor_was(
    case: tuple[tuple[int | None, ...], list[int]],
) -> None:
    parents, cancelled = case

    async def scenario() -> None:
        manager = TaskManager("n", ManualClock())
        service = CancellationService(manager)
        tasks: list[Task] = []
        for parent in parents:
            parent_id = tasks[parent].id if parent is not None else None
            if parent_id is None:
                tasks.append(manager.register("transport", "t"))
            else:
                tasks.append(manager.register("direct", "t", parent_id=parent_id))
        for index in cancelled:
            await service.cancel(tasks[index], CancelReason(f"c{index}"))
        chosen = set(cancelled)
        for index, task in enumerate(tasks):
            expected = index in chosen or any(a in chosen for a in ancestors(parents, index))
            assert task.is_cancelled == expected, (index, parents, cancelled)
        for index in chosen:
            with pytest.raises(TaskCancelledError):
                manager.register("direct", "late", parent_id=tasks[index].id)

    asyncio.run(scenario())
