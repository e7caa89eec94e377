"""ActionRunner with real asyncio and thread executors: outcomes, cancellation, children."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from taskwarden.errors import RejectedExecutionError, ResourceNotFoundError
from taskwarden.runtime.asyncrun import AsyncRun
from taskwarden.runtime.executors.processes import ProcessExecutor
from taskwarden.runtime.executors.threads import ThreadExecutor
from taskwarden.runtime.handle import AsyncTaskHandle, ThreadTaskHandle
from taskwarden.runtime.registry import ActionRegistry, action
from taskwarden.runtime.runner import ActionRunner, Outcome
from taskwarden.tasks import CancellationService, CancelReason, Task, TaskManager


class Harness:
    """A runner over a fresh manager and registry, plus events the test actions report through."""

    def __init__(self, runner: ActionRunner, registry: ActionRegistry) -> None:
        self.runner = runner
        self.registry = registry
        self.manager = runner.manager
        self.cancellation = CancellationService(runner.manager)
        self.started = asyncio.Event()
        self.cleaned_up = asyncio.Event()
        self.thread_started = threading.Event()
        self.thread_cleaned_up = threading.Event()

    def launch(self, name: str, body: dict[str, Any] | None = None) -> tuple[Task, asyncio.Future[Outcome]]:
        spec, params = self.runner.prepare(name, body or {})
        task = self.runner.register(spec, params, headers={"X-Opaque-Id": "op-1"})
        return task, self.runner.launch(task, spec, params)

    def only_task(self, action_name: str) -> Task:
        found = [t for t in self.manager if t.action == action_name]
        assert len(found) == 1, found
        return found[0]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    registry = ActionRegistry()
    threads = ThreadExecutor(max_workers=2, queue_size=1)
    processes = ProcessExecutor(max_workers=1, default_grace=1.0)
    runner = ActionRunner(TaskManager("n1"), registry, threads=threads, processes=processes)
    h = Harness(runner, registry)

    @action("t:echo", registry=registry)
    async def echo(task: AsyncTaskHandle, value: int = 1) -> dict[str, Any]:
        return {"value": value, "id": task.id}

    @action("t:wait", registry=registry)
    async def wait(task: AsyncTaskHandle) -> None:
        h.started.set()
        try:
            await asyncio.Event().wait()
        finally:
            h.cleaned_up.set()

    @action("t:stubborn", registry=registry)
    async def stubborn(task: AsyncTaskHandle) -> str:
        h.started.set()
        swallowed = 0
        while swallowed < 3:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                swallowed += 1
        h.cleaned_up.set()
        return "gave up"

    @action("t:blocking", registry=registry)
    def blocking(task: ThreadTaskHandle) -> None:
        h.thread_started.set()
        try:
            task.sleep(3600)
        finally:
            h.thread_cleaned_up.set()

    @action("t:fail", registry=registry)
    async def fail(task: AsyncTaskHandle) -> None:
        raise KeyError("missing")

    @action("t:not-json", registry=registry)
    async def not_json(task: AsyncTaskHandle) -> object:
        return object()

    @action("t:parent", registry=registry)
    async def parent(task: AsyncTaskHandle) -> list[Any]:
        return await task.spawn_on("_all", "t:wait")

    @action("t:thread-parent", registry=registry)
    def thread_parent(task: ThreadTaskHandle, action: str = "t:echo") -> Any:
        return task.spawn(action, {"value": 5})

    try:
        yield h
    finally:
        for task in list(h.manager):
            await h.cancellation.cancel(task, CancelReason("test over"))
        threads.shutdown()
        await processes.shutdown()


async def test_response_is_returned_and_task_unregistered(harness: Harness) -> None:
    task, outcome = harness.launch("t:echo", {"value": 7})
    result = await outcome
    assert result == Outcome(response={"value": 7, "id": str(task.id)})
    assert harness.manager.get(task.id) is None


async def test_unknown_action_is_not_found_and_nothing_registers(harness: Harness) -> None:
    with pytest.raises(ResourceNotFoundError, match=r"action \[t:nope\] is not registered"):
        harness.launch("t:nope")
    assert len(harness.manager) == 0


async def test_unknown_parameter_is_refused_before_registration(harness: Harness) -> None:
    with pytest.raises(Exception, match=r"does not support parameter \[bogus\]"):
        harness.launch("t:echo", {"bogus": 1})
    assert len(harness.manager) == 0


async def test_cancelled_coroutine_runs_its_finally_and_reports_the_reason(harness: Harness) -> None:
    task, outcome = harness.launch("t:wait")
    await harness.started.wait()
    await harness.cancellation.cancel(task, CancelReason("enough"))
    result = await asyncio.wait_for(outcome, 10)
    assert harness.cleaned_up.is_set()
    assert result.error is not None
    assert result.error.to_dict() == {
        "type": "task_cancelled_exception", "reason": "task cancelled [enough]",
    }
    assert harness.manager.get(task.id) is None


async def test_coroutine_that_swallows_cancellation_is_cancelled_again(harness: Harness) -> None:
    task, outcome = harness.launch("t:stubborn")
    await harness.started.wait()
    await harness.cancellation.cancel(task, CancelReason("stop"))
    result = await asyncio.wait_for(outcome, 20)
    assert harness.cleaned_up.is_set()
    assert result.response == "gave up"


async def test_thread_action_wakes_on_cancel_and_cleans_up(harness: Harness) -> None:
    task, outcome = harness.launch("t:blocking")
    assert await asyncio.to_thread(harness.thread_started.wait, 10)
    await harness.cancellation.cancel(task, CancelReason("user"), wait_for_completion=True)
    assert harness.thread_cleaned_up.is_set()
    result = await outcome
    assert result.error is not None and result.error.type == "task_cancelled_exception"


async def test_full_thread_pool_rejects_with_429(harness: Harness) -> None:
    launched = [harness.launch("t:blocking") for _ in range(3)]  # 2 workers + 1 queued
    assert await asyncio.to_thread(harness.thread_started.wait, 10)
    task, outcome = harness.launch("t:blocking")
    result = await outcome
    assert isinstance(result.error, RejectedExecutionError)
    assert result.error.http_status == 429
    assert harness.manager.get(task.id) is None
    for running, pending in launched:
        await harness.cancellation.cancel(running, CancelReason("done"))
        assert (await asyncio.wait_for(pending, 10)).error is not None


async def test_failures_keep_their_type_and_message(harness: Harness) -> None:
    _, outcome = harness.launch("t:fail")
    result = await outcome
    assert result.error is not None
    assert result.error.http_status == 500
    assert "missing" in result.error.reason


async def test_non_json_response_is_an_illegal_state(harness: Harness) -> None:
    _, outcome = harness.launch("t:not-json")
    result = await outcome
    assert result.error is not None and result.error.type == "illegal_state_exception"


async def test_children_carry_parent_and_headers_and_stop_with_it(harness: Harness) -> None:
    parent, outcome = harness.launch("t:parent")
    await harness.started.wait()
    child = harness.only_task("t:wait")
    assert child.parent_id == parent.id
    assert child.headers == {"X-Opaque-Id": "op-1"}
    await harness.cancellation.cancel(parent, CancelReason("tree"), wait_for_completion=True)
    assert harness.cleaned_up.is_set()
    assert len(harness.manager) == 0
    result = await outcome
    assert result.error is not None and result.error.type == "task_cancelled_exception"


def test_decorator_refuses_mismatched_executor() -> None:
    registry = ActionRegistry()

    def plain(task: ThreadTaskHandle) -> None:
        return None

    async def coroutine(task: AsyncTaskHandle) -> None:
        return None

    with pytest.raises(TypeError, match="needs an 'async def'"):
        action("x:a", executor="async", registry=registry)(plain)
    with pytest.raises(TypeError, match="needs a plain 'def'"):
        action("x:b", executor="thread", registry=registry)(coroutine)
    assert registry.names() == []


async def test_cancel_before_the_first_step_still_unregisters(harness: Harness) -> None:
    task, outcome = harness.launch("t:wait")
    # No await between launch and cancel: the coroutine has not run a single step yet.
    await harness.cancellation.cancel(task, CancelReason("early"))
    result = await asyncio.wait_for(outcome, 10)
    assert result.error is not None
    assert result.error.reason == "task cancelled [early]"
    assert harness.manager.get(task.id) is None
    assert not harness.started.is_set()


async def test_a_thread_action_spawns_a_child_and_gets_its_answer(harness: Harness) -> None:
    task, outcome = harness.launch("t:thread-parent")
    ended = await outcome
    assert ended.error is None, ended.error
    assert ended.response["value"] == 5
    assert ended.response["id"] != str(task.id)
    # A child refused at its start (registered on the event loop, not in this thread) fails
    # the parent with the refusal.
    refused = await harness.launch("t:thread-parent", {"action": "t:fail"})[1]
    assert refused.error is not None
    assert refused.error.reason == "action [t:fail] does not support parameter [value]"


async def test_a_cancelled_tree_leaves_nothing_for_the_cycle_collector(harness: Harness) -> None:
    """Its runs, tasks and cancel errors are freed by reference counting as they end."""
    running = 0
    all_running = asyncio.Event()

    @action("t:idle", registry=harness.registry)
    async def idle(task: AsyncTaskHandle) -> None:
        nonlocal running
        running += 1
        if running == 20:
            all_running.set()
        await asyncio.get_running_loop().create_future()

    @action("t:idle-tree", registry=harness.registry)
    async def idle_tree(task: AsyncTaskHandle) -> None:
        await asyncio.gather(*(task.spawn("t:idle") for _ in range(20)))

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        parent, outcome = harness.launch("t:idle-tree")
        await all_running.wait()
        await harness.cancellation.cancel(parent, CancelReason("tree"), wait_for_completion=True)
        ended = await outcome
        assert ended.error is not None and ended.error.type == "task_cancelled_exception"
        del parent, outcome, ended
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, (AsyncRun, Task, asyncio.CancelledError))]
        assert left == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_a_job_torn_down_before_its_first_step_unregisters_even_if_its_waiter_gave_up(
    harness: Harness,
) -> None:
    task, outcome = harness.launch("t:blocking")
    outcome.cancel()  # the waiter went away
    # The node's teardown cancels the thread action's asyncio task before it has run a step.
    (job,) = [j for j in asyncio.all_tasks() if j.get_name() == f"{task.id} t:blocking"]
    job.cancel()
    await asyncio.wait([job])  # returns after the job's earlier done callbacks have run
    assert harness.manager.get(task.id) is None
    assert not harness.thread_started.is_set()
