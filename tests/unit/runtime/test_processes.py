"""ProcessExecutor with real worker processes: results, errors, status, and the stop ladder."""

from __future__ import annotations

import asyncio
import logging
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from taskwarden.errors import (
    ActionFailedError,
    IllegalArgumentError,
    RejectedExecutionError,
    TaskCancelledError,
)
from taskwarden.runtime.executors.processes import ProcessExecutor, _FrameReader
from taskwarden.tasks import CancellableTask, CancelReason, Task, TaskManager

# Workers import their function by qualified name, using the sys.path the parent has when it
# starts them, so the helpers' folder on sys.path is enough for the children as well.
sys.path.insert(0, str(Path(__file__).parent))
import procfuncs


@pytest.fixture
async def executor() -> AsyncIterator[ProcessExecutor]:
    processes = ProcessExecutor(max_workers=4, default_grace=5.0)
    try:
        yield processes
    finally:
        await processes.shutdown()


@pytest.fixture
def manager() -> TaskManager:
    return TaskManager("n1")


def new_task(manager: TaskManager) -> CancellableTask:
    task = manager.register("transport", "test:proc")
    assert isinstance(task, CancellableTask)
    return task


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll for a worker's status: ``Task.status`` is a plain attribute with no event to await."""
    async with asyncio.timeout(30.0):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def start(
    executor: ProcessExecutor,
    task: Task,
    fn: Callable[..., Any],
    grace: float | None = None,
    **kwargs: Any,
) -> asyncio.Task[Any]:
    return asyncio.create_task(executor.run(task, fn, kwargs, grace=grace))


async def test_result_comes_back_and_handle_knows_its_task(
    executor: ProcessExecutor, manager: TaskManager
) -> None:
    task = new_task(manager)
    result = await executor.run(task, procfuncs.describe, {"a": 2, "b": 3})
    assert result["sum"] == 5
    assert result["id"] == "n1:1"
    assert result["action"] == "test:proc"
    assert not psutil.pid_exists(result["pid"])
    assert executor.running == 0


async def test_large_result_crosses_the_pipe(
    executor: ProcessExecutor, manager: TaskManager
) -> None:
    result = await executor.run(new_task(manager), procfuncs.return_bytes, {"size": 8_000_000})
    assert result == b"x" * 8_000_000


async def test_plain_exception_becomes_action_failed(
    executor: ProcessExecutor, manager: TaskManager
) -> None:
    with pytest.raises(ActionFailedError) as caught:
        await executor.run(new_task(manager), procfuncs.raise_value_error, {"message": "boom"})
    assert caught.value.reason == "boom"
    assert caught.value.type == "value_exception"


async def test_taskwarden_error_keeps_its_class(
    executor: ProcessExecutor, manager: TaskManager
) -> None:
    with pytest.raises(IllegalArgumentError) as caught:
        await executor.run(new_task(manager), procfuncs.raise_illegal_argument, {})
    assert caught.value.reason == "bad [x]"
    assert caught.value.metadata == {"index": "i1"}


async def test_unpicklable_result_is_an_error(
    executor: ProcessExecutor, manager: TaskManager
) -> None:
    with pytest.raises(ActionFailedError) as caught:
        await executor.run(new_task(manager), procfuncs.return_unpicklable, {})
    assert caught.value.type == "illegal_state_exception"


async def test_worker_dying_on_its_own_is_reported(
    executor: ProcessExecutor, manager: TaskManager
) -> None:
    with pytest.raises(ActionFailedError) as caught:
        await executor.run(new_task(manager), procfuncs.exit_abruptly, {"code": 3})
    assert caught.value.reason == "worker process exited with code 3"
    assert caught.value.type == "worker_died_exception"


async def test_worker_ignores_sigint(executor: ProcessExecutor, manager: TaskManager) -> None:
    assert await executor.run(new_task(manager), procfuncs.survive_sigint, {}) == "alive"


async def test_already_cancelled_task_starts_nothing(
    executor: ProcessExecutor, manager: TaskManager
) -> None:
    task = new_task(manager)
    task.mark_cancelled(CancelReason("by user request"))
    with pytest.raises(TaskCancelledError, match=r"task cancelled \[by user request\]"):
        await executor.run(task, procfuncs.describe, {"a": 1, "b": 1})
    assert executor.running == 0


async def test_status_reaches_the_task_and_cooperative_cancel_runs_finally(
    executor: ProcessExecutor, manager: TaskManager, tmp_path: Path
) -> None:
    task = new_task(manager)
    marker = tmp_path / "finally"
    run = start(executor, task, procfuncs.report_then_sleep, marker=str(marker), seconds=600)
    await wait_until(lambda: task.status == {"phase": "sleeping", "done": 2})
    pid = executor.pid_of(task)
    assert pid is not None and psutil.pid_exists(pid)

    began = time.monotonic()
    task.mark_cancelled(CancelReason("by user request"))
    with pytest.raises(TaskCancelledError, match=r"^task cancelled \[by user request\]$"):
        await run
    assert time.monotonic() - began < 2.0  # grace is 5s: only the cooperative path is this fast
    assert marker.read_text() == "cleaned up"
    assert not psutil.pid_exists(pid)
    assert executor.running == 0
    assert executor.pid_of(task) is None


async def test_busy_loop_checking_cancellation_stops_quickly(
    executor: ProcessExecutor, manager: TaskManager, tmp_path: Path
) -> None:
    task = new_task(manager)
    marker = tmp_path / "finally"
    run = start(executor, task, procfuncs.check_in_busy_loop, marker=str(marker))
    await wait_until(lambda: task.status is not None)
    began = time.monotonic()
    task.mark_cancelled(CancelReason("by user request"))
    with pytest.raises(TaskCancelledError):
        await run
    assert time.monotonic() - began < 2.0
    assert marker.read_text() == "cleaned up"


def signals_sent(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        name
        for record in caplog.records
        if record.name == "taskwarden.runtime.executors.processes"
        for name in ("SIGTERM", "SIGKILL")
        if name in record.getMessage()
    ]


async def test_uncooperative_worker_is_terminated_after_grace(
    executor: ProcessExecutor, manager: TaskManager, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="taskwarden.runtime.executors.processes")
    task = new_task(manager)
    run = start(executor, task, procfuncs.spin_forever, grace=0.2)
    await wait_until(lambda: task.status is not None)
    pid = executor.pid_of(task)
    assert pid is not None

    began = time.monotonic()
    task.mark_cancelled(CancelReason("by user request"))
    with pytest.raises(TaskCancelledError, match=r"task cancelled \[by user request\]"):
        await run
    assert 0.2 <= time.monotonic() - began < 10.0
    assert signals_sent(caplog) == ["SIGTERM"]
    assert not psutil.pid_exists(pid)


async def test_worker_ignoring_sigterm_is_killed(
    executor: ProcessExecutor, manager: TaskManager, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="taskwarden.runtime.executors.processes")
    task = new_task(manager)
    run = start(executor, task, procfuncs.ignore_sigterm_forever, grace=0.2)
    await wait_until(lambda: task.status is not None)
    pid = executor.pid_of(task)
    assert pid is not None

    began = time.monotonic()
    task.mark_cancelled(CancelReason("by user request"))
    with pytest.raises(TaskCancelledError, match=r"task cancelled \[by user request\]"):
        await run
    assert 0.4 <= time.monotonic() - began < 10.0
    assert signals_sent(caplog) == ["SIGTERM", "SIGKILL"]
    assert not psutil.pid_exists(pid)


async def test_full_executor_rejects(manager: TaskManager, tmp_path: Path) -> None:
    processes = ProcessExecutor(max_workers=1, default_grace=5.0)
    try:
        task = new_task(manager)
        run = start(processes, task, procfuncs.report_then_sleep,
                    marker=str(tmp_path / "m"), seconds=600)
        await wait_until(lambda: task.status is not None)
        assert processes.running == 1
        other = new_task(manager)
        with pytest.raises(RejectedExecutionError) as caught:
            await processes.run(other, procfuncs.describe, {"a": 1, "b": 1})
        assert caught.value.reason == (
            "rejected execution of process task [n1:2]: 1 workers already running"
        )
        assert caught.value.http_status == 429
        task.mark_cancelled(CancelReason("by user request"))
        with pytest.raises(TaskCancelledError):
            await run
    finally:
        await processes.shutdown()


async def test_shutdown_stops_every_worker_and_refuses_more(
    executor: ProcessExecutor, manager: TaskManager, tmp_path: Path
) -> None:
    polite, stubborn = new_task(manager), new_task(manager)
    runs = [
        start(executor, polite, procfuncs.report_then_sleep,
              marker=str(tmp_path / "m"), seconds=600),
        start(executor, stubborn, procfuncs.ignore_sigterm_forever),
    ]
    await wait_until(lambda: polite.status is not None and stubborn.status is not None)
    pids = [executor.pid_of(polite), executor.pid_of(stubborn)]
    assert executor.running == 2

    await executor.shutdown()
    assert executor.running == 0
    for pid in pids:
        assert pid is not None and not psutil.pid_exists(pid)
    for run in runs:
        with pytest.raises(TaskCancelledError, match=r"task cancelled \[node shutting down\]"):
            await run
    assert (tmp_path / "m").read_text() == "cleaned up"
    with pytest.raises(RejectedExecutionError):
        await executor.run(new_task(manager), procfuncs.describe, {"a": 1, "b": 1})


async def test_abandoned_run_kills_its_worker(
    executor: ProcessExecutor, manager: TaskManager
) -> None:
    task = new_task(manager)
    run = start(executor, task, procfuncs.spin_forever)
    await wait_until(lambda: task.status is not None)
    pid = executor.pid_of(task)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert pid is not None and not psutil.pid_exists(pid)
    assert executor.running == 0


_DYING_NODE = """
import asyncio, os, sys
sys.path.insert(0, {helpers!r})
import procfuncs
from taskwarden.runtime.executors.processes import ProcessExecutor
from taskwarden.tasks import TaskManager

async def main():
    task = TaskManager("n1").register("transport", "test:proc")
    executor = ProcessExecutor()
    asyncio.create_task(executor.run(task, procfuncs.spin_forever, {{}}, grace=0.2))
    while task.status is None:
        await asyncio.sleep(0.01)
    print(executor.pid_of(task), flush=True)
    os._exit(1)

if __name__ == "__main__":
    asyncio.run(main())
"""


def gone_or_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_worker_stops_itself_when_its_node_dies(tmp_path: Path) -> None:
    script = tmp_path / "dying_node.py"
    script.write_text(_DYING_NODE.format(helpers=str(Path(__file__).parent)))
    # Only the first line: a surviving worker would hold the pipe open to the end.
    with subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as node:
        assert node.stdout is not None
        pid = int(node.stdout.readline())
        node.wait(timeout=60)
    deadline = time.monotonic() + 30.0
    # Not our child (its parent is gone): there is nothing to wait on but its state.
    while not gone_or_zombie(pid):
        if time.monotonic() > deadline:
            psutil.Process(pid).kill()
            pytest.fail(f"worker {pid} outlived its node")
        time.sleep(0.05)


def test_frame_reader_handles_split_and_long_headers() -> None:
    reader = _FrameReader()
    wire = struct.pack("!i", 3) + b"abc" + struct.pack("!i", -1) + struct.pack("!Q", 2) + b"de"
    frames = [frame for i in range(len(wire)) for frame in reader.feed(wire[i : i + 1])]
    assert frames == [b"abc", b"de"]
