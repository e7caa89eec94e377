"""CancellationService: idempotence, reasons, bans and waiting for the tree."""

from __future__ import annotations

import asyncio

import pytest

from taskwarden.errors import IllegalArgumentError, TaskCancelledError
from taskwarden.tasks import (
    CancellableTask,
    CancellationService,
    CancelReason,
    CancelSource,
    ManualClock,
    TaskId,
    TaskManager,
)
from taskwarden.tasks.cancellation import RemoteBans


def make() -> tuple[TaskManager, CancellationService]:
    manager = TaskManager("n", ManualClock())
    return manager, CancellationService(manager)


async def test_first_reason_wins_and_cancel_is_idempotent() -> None:
    manager, service = make()
    task = manager.register("transport", "a")
    assert isinstance(task, CancellableTask)
    calls: list[str] = []
    task.add_cancel_listener(lambda reason: calls.append(reason.message))
    await service.cancel(task, CancelReason("first"))
    await service.cancel(task, CancelReason("second"))
    assert task.cancel_reason is not None and task.cancel_reason.message == "first"
    assert calls == ["first"]
    with pytest.raises(TaskCancelledError, match=r"task cancelled \[first\]"):
        task.check_cancelled()


async def test_listeners_on_the_task_and_on_the_manager_each_hear_a_cancel_once() -> None:
    manager, service = make()
    root = manager.register("transport", "root")
    child = manager.register("direct", "child", parent_id=root.id)
    assert isinstance(root, CancellableTask) and isinstance(child, CancellableTask)
    heard: list[str] = []
    manager.add_cancel_listener(lambda task, reason: heard.append(f"manager {task.action}"))
    kept, dropped = (lambda reason: heard.append("kept")), (lambda reason: heard.append("x"))
    child.add_cancel_listener(kept)
    child.add_cancel_listener(dropped)
    child.remove_cancel_listener(dropped)
    root.add_cancel_listener(dropped)
    root.remove_cancel_listener(dropped)
    await service.cancel(root, CancelReason("why"))
    await service.cancel(root, CancelReason("again"))
    assert sorted(heard) == ["kept", "manager child", "manager root"]


async def test_listener_added_after_cancel_runs_at_once() -> None:
    manager, service = make()
    task = manager.register("transport", "a")
    await service.cancel(task, CancelReason("why"))
    seen: list[str] = []
    assert isinstance(task, CancellableTask)
    task.add_cancel_listener(lambda reason: seen.append(reason.message))
    assert seen == ["why"]


async def test_not_cancellable_is_an_error() -> None:
    manager, service = make()
    task = manager.register("transport", "a", cancellable=False)
    with pytest.raises(IllegalArgumentError, match=r"doesn't support cancellation"):
        await service.cancel(task, CancelReason("x"))


async def test_cancel_reaches_descendants_and_bans_new_children() -> None:
    manager, service = make()
    root = manager.register("transport", "r")
    child = manager.register("direct", "c", parent_id=root.id)
    grandchild = manager.register("direct", "g", parent_id=child.id)
    await service.cancel(root, CancelReason("stop", CancelSource.USER))
    for task in (root, child, grandchild):
        assert task.is_cancelled
    assert isinstance(grandchild, CancellableTask)
    assert grandchild.cancel_reason is not None
    assert grandchild.cancel_reason.message == "stop"
    assert grandchild.cancel_reason.source is CancelSource.PARENT
    with pytest.raises(TaskCancelledError, match=r"before starting \[stop\]"):
        manager.register("direct", "late", parent_id=root.id)
    with pytest.raises(TaskCancelledError):
        manager.register("direct", "late", parent_id=grandchild.id)


async def test_wait_returns_only_after_whole_tree_ended() -> None:
    manager, service = make()
    root = manager.register("transport", "r")
    child = manager.register("direct", "c", parent_id=root.id)
    cancel = asyncio.ensure_future(
        service.cancel(root, CancelReason("x"), wait_for_completion=True)
    )
    await asyncio.sleep(0)
    manager.unregister(root)
    await asyncio.sleep(0)
    assert not cancel.done()
    manager.unregister(child)
    assert await asyncio.wait_for(cancel, 5) == []


async def test_bans_are_removed_once_parent_and_children_ended() -> None:
    manager, service = make()
    root = manager.register("transport", "r")
    child = manager.register("direct", "c", parent_id=root.id)
    await service.cancel(root, CancelReason("x"))
    assert manager.ban_reason(root.id) is not None
    manager.unregister(root)
    await asyncio.sleep(0)
    assert manager.ban_reason(root.id) is not None
    manager.unregister(child)
    for _ in range(5):
        await asyncio.sleep(0)
    assert manager.bans() == {}


class RecordingRemote(RemoteBans):
    def __init__(self) -> None:
        self.bans: list[tuple[set[str], TaskId, str, bool]] = []
        self.unbans: list[tuple[set[str], TaskId]] = []

    async def ban(self, node_ids, parent_id, reason, wait_for_completion):  # type: ignore[no-untyped-def]
        self.bans.append((set(node_ids), parent_id, reason.message, wait_for_completion))
        return []

    async def unban(self, node_ids, parent_id):  # type: ignore[no-untyped-def]
        self.unbans.append((set(node_ids), parent_id))


async def test_remote_children_are_banned_through_the_port() -> None:
    manager = TaskManager("n", ManualClock())
    remote = RecordingRemote()
    service = CancellationService(manager, remote)
    root = manager.register("transport", "r")
    root.add_child_node("other")
    root.add_child_node("n")
    cancel = asyncio.ensure_future(
        service.cancel(root, CancelReason("x"), wait_for_completion=True)
    )
    for _ in range(3):
        await asyncio.sleep(0)
    assert remote.bans == [({"other"}, root.id, "x", True)]
    assert not cancel.done()
    manager.unregister(root)
    assert await asyncio.wait_for(cancel, 5) == []
    for _ in range(5):
        await asyncio.sleep(0)
    assert remote.unbans == [({"other"}, root.id)]


async def test_thread_waiter_wakes_on_cancel() -> None:
    manager, service = make()
    task = manager.register("transport", "a")
    assert isinstance(task, CancellableTask)
    loop = asyncio.get_running_loop()
    waiting = loop.run_in_executor(None, task.wait_cancelled, 30.0)
    await asyncio.sleep(0.05)
    await service.cancel(task, CancelReason("x"))
    assert await asyncio.wait_for(waiting, 5) is True
