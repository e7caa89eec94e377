"""TaskManager: registration, lookup, bans and waiting."""

from __future__ import annotations

import asyncio

import pytest

from taskwarden.errors import TaskCancelledError
from taskwarden.tasks import (
    CancellableTask,
    CancelReason,
    ManualClock,
    Task,
    TaskFilter,
    TaskId,
    TaskManager,
)


def make() -> TaskManager:
    return TaskManager("node1", ManualClock())


def test_ids_count_from_one_per_node() -> None:
    manager = make()
    first = manager.register("transport", "a")
    second = manager.register("transport", "b")
    assert first.id == TaskId("node1", 1)
    assert second.id == TaskId("node1", 2)
    assert manager.get(first.id) is first
    assert manager.get(TaskId("other", 1)) is None


def test_unregister_is_idempotent_and_forgets() -> None:
    manager = make()
    task = manager.register("transport", "a")
    manager.unregister(task)
    manager.unregister(task)
    assert manager.get(task.id) is None
    assert len(manager) == 0


def test_cancellable_flag_picks_class() -> None:
    manager = make()
    assert isinstance(manager.register("transport", "a"), CancellableTask)
    plain = manager.register("transport", "b", cancellable=False)
    assert type(plain) is Task
    assert plain.info(detailed=False).cancelled is None


def test_matching_by_action_wildcard_and_parent() -> None:
    manager = make()
    parent = manager.register("transport", "test:sleep")
    child = manager.register("direct", "test:sleep[c]", parent_id=parent.id)
    manager.register("transport", "cluster:monitor/tasks/lists")
    assert manager.matching(TaskFilter(actions=("test:*",))) == [parent, child]
    assert manager.matching(TaskFilter(parent_id=parent.id)) == [child]
    assert manager.matching(TaskFilter(actions=("*[c]",))) == [child]
    assert manager.matching(TaskFilter(actions=("Test:*",))) == []


def test_banned_parent_refuses_cancellable_child_but_not_plain() -> None:
    manager = make()
    parent = manager.register("transport", "p")
    manager.ban_parent(parent.id, CancelReason("by user request"))
    with pytest.raises(TaskCancelledError) as info:
        manager.register("direct", "c", parent_id=parent.id)
    assert info.value.reason == "task cancelled before starting [by user request]"
    assert len(manager) == 1
    manager.register("direct", "c", parent_id=parent.id, cancellable=False)
    manager.remove_ban(parent.id)
    manager.register("direct", "c", parent_id=parent.id)


def test_descendants_are_found_recursively() -> None:
    manager = make()
    root = manager.register("transport", "r")
    child = manager.register("direct", "c", parent_id=root.id)
    grandchild = manager.register("direct", "g", parent_id=child.id)
    assert manager.descendants_of(root.id) == [child, grandchild]


async def test_waiting_for_task_and_descendants() -> None:
    manager = make()
    root = manager.register("transport", "r")
    child = manager.register("direct", "c", parent_id=root.id)
    waiter = asyncio.ensure_future(manager.wait_for_task_and_descendants(root))
    await asyncio.sleep(0)
    manager.unregister(root)
    await asyncio.sleep(0)
    assert not waiter.done()
    manager.unregister(child)
    await asyncio.wait_for(waiter, 5)


async def test_removal_future_of_gone_task_is_done() -> None:
    manager = make()
    task = manager.register("transport", "a")
    manager.unregister(task)
    assert manager.removal(task).done()


def test_info_field_order_and_running_time() -> None:
    clock = ManualClock()
    manager = TaskManager("n", clock)
    parent = manager.register("transport", "p", headers={"X-Opaque-Id": "x"})
    task = manager.register("direct", "c", parent_id=parent.id, description="d")
    task.status = {"phase": "s"}
    clock.advance(1.5)
    info = task.info(detailed=True).to_dict(human=True)
    assert list(info) == [
        "node", "id", "type", "action", "status", "description", "start_time",
        "start_time_in_millis", "running_time", "running_time_in_nanos", "cancellable",
        "cancelled", "parent_task_id", "headers",
    ]
    assert info["running_time_in_nanos"] == 1_500_000_000
    assert info["running_time"] == "1.5s"
    assert info["parent_task_id"] == "n:1"
    brief = task.info(detailed=False).to_dict()
    assert "status" not in brief and "description" not in brief and "start_time" not in brief
