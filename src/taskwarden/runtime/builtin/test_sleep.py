"""``test:sleep``: the built-in action docs, demos, benchmarks and tests drive the node with."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from taskwarden.errors import ActionFailedError, IllegalArgumentError, TaskCancelledError
from taskwarden.runtime.handle import AsyncTaskHandle, ThreadTaskHandle
from taskwarden.runtime.registry import EXECUTOR_KINDS, ActionRegistry, ActionSpec
from taskwarden.timevalue import parse_time_value

__all__ = ["MAX_CHILDREN_PER_NODE", "MAX_DURATION_NANOS", "register_test_actions"]

SLEEP = "test:sleep"
SLEEP_CHILD = "test:sleep[c]"

MAX_CHILDREN_PER_NODE = 10_000
MAX_DURATION_NANOS = 24 * 3600 * 10**9
_NANOS = 1e9

_DEFAULTS: dict[str, Any] = {
    "duration": "1h",
    "cancellable": True,
    "children_per_node": 0,
    "spawn_delay": "0s",
    "executor": "async",
    "busy": False,
    "stop_delay": "0s",
    "ignore_cancel": False,
    "grace": None,
    "fail": None,
}
_TIME_PARAMS = ("duration", "spawn_delay", "stop_delay", "grace")
_BOOL_PARAMS = ("cancellable", "busy", "ignore_cancel")


def _shown(value: Any) -> str:
    """A body value as the caller wrote it: JSON (``null``, ``true``), strings bare."""
    return value if isinstance(value, str) else json.dumps(value)


def _validate(body: Mapping[str, Any], *, child: bool) -> dict[str, Any]:
    """Check every parameter, naming the bad one; time values become seconds."""
    allowed = set(_DEFAULTS) - ({"children_per_node", "spawn_delay"} if child else set())
    for name in body:
        if name not in allowed:
            raise IllegalArgumentError(f"[{SLEEP}] unknown parameter [{name}]")
    params = {k: v for k, v in _DEFAULTS.items() if k in allowed}
    params.update(body)
    out: dict[str, Any] = {}
    for name in _TIME_PARAMS:
        if name not in allowed:
            continue
        raw = params[name]
        if raw is None and name == "grace":
            out[name] = None
            continue
        if not isinstance(raw, str):
            raise IllegalArgumentError(
                f"[{SLEEP}] parameter [{name}] must be a time value string such as \"30s\", "
                f"but was [{_shown(raw)}]"
            )
        try:
            nanos = parse_time_value(raw, name)
        except IllegalArgumentError as exc:  # ES's wording need not name the parameter: do
            raise IllegalArgumentError(
                f"[{SLEEP}] parameter [{name}] must be a time value such as \"30s\" but was [{raw}]",
                caused_by=exc,
            ) from None
        if nanos < 0 or nanos > MAX_DURATION_NANOS:
            raise IllegalArgumentError(
                f"[{SLEEP}] parameter [{name}] must be between [0s] and [24h] but was [{raw}]"
            )
        out[name] = nanos / _NANOS
    for name in _BOOL_PARAMS:
        if not isinstance(params[name], bool):
            raise IllegalArgumentError(
                f"[{SLEEP}] parameter [{name}] must be true or false but was [{_shown(params[name])}]"
            )
        out[name] = params[name]
    if not child:
        count = params["children_per_node"]
        if not isinstance(count, int) or isinstance(count, bool) or not (
            0 <= count <= MAX_CHILDREN_PER_NODE
        ):
            raise IllegalArgumentError(
                f"[{SLEEP}] parameter [children_per_node] must be an integer between [0] and "
                f"[{MAX_CHILDREN_PER_NODE}] but was [{_shown(count)}]"
            )
        out["children_per_node"] = count
    if params["executor"] not in EXECUTOR_KINDS:
        raise IllegalArgumentError(
            f"[{SLEEP}] parameter [executor] must be one of [async], [thread] or [process] "
            f"but was [{_shown(params['executor'])}]"
        )
    out["executor"] = params["executor"]
    fail = params["fail"]
    if fail is not None and not isinstance(fail, str):
        raise IllegalArgumentError(f"[{SLEEP}] parameter [fail] must be a string")
    out["fail"] = fail
    # Keep the caller's spelling for children, so they validate the same way.
    out["raw"] = {k: v for k, v in body.items() if k not in ("children_per_node", "spawn_delay")}
    return out


class _Progress:
    """Live status: phase, elapsed milliseconds, children started."""

    __slots__ = ("children", "phase", "started")

    def __init__(self) -> None:
        self.phase = "starting"
        self.started = time.monotonic()
        self.children = 0

    def __call__(self) -> dict[str, Any]:
        elapsed = int((time.monotonic() - self.started) * 1000)
        return {"phase": self.phase, "elapsed_millis": elapsed, "children": self.children}


async def test_sleep(task: AsyncTaskHandle, **p: Any) -> dict[str, Any]:
    """Sleep (or burn CPU) for a while, optionally with children on every node."""
    progress = _Progress()
    task.status = progress
    children: asyncio.Future[list[Any]] | None = None
    if p.get("children_per_node"):
        children = asyncio.ensure_future(_spawn_children(task, p, progress))
    try:
        progress.phase = "sleeping"
        await _sleep(task, p)
    except (asyncio.CancelledError, TaskCancelledError):
        progress.phase = "stopping"
        # Thread and process bodies already spent the stop delay themselves (once is the spec).
        if p["stop_delay"] and p["executor"] == "async":
            await task.until_done(asyncio.sleep(p["stop_delay"]))
        if children is not None:
            await task.until_done(_settle(children))
        raise
    if children is not None:
        progress.phase = "waiting for children"
        results = await task.until_done(children)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            task.check_cancelled()
            raise errors[0]
    if p["fail"] is not None:
        raise ActionFailedError(p["fail"], es_type="exception", status=500)
    return {"slept_millis": int((time.monotonic() - progress.started) * 1000),
            "children": progress.children}


async def _settle(children: asyncio.Future[list[Any]]) -> None:
    await asyncio.wait([children])


async def _spawn_children(
    task: AsyncTaskHandle, p: dict[str, Any], progress: _Progress
) -> list[Any]:
    if p["spawn_delay"]:
        if p["ignore_cancel"]:
            await task.until_done(asyncio.sleep(p["spawn_delay"]))
        else:
            await task.sleep(p["spawn_delay"])
    nodes = task.nodes()
    count = p["children_per_node"]
    progress.children = count * len(nodes)
    spawns = [
        task.spawn(SLEEP_CHILD, p["raw"], node=node) for node in nodes for _ in range(count)
    ]
    return list(await asyncio.gather(*spawns, return_exceptions=True))


async def _sleep(task: AsyncTaskHandle, p: dict[str, Any]) -> None:
    executor = p["executor"]
    if executor == "thread":
        await task.run_in_thread(
            _sleep_blocking, p["duration"], p["busy"], p["ignore_cancel"], p["stop_delay"]
        )
    elif executor == "process":
        await task.run_in_process(
            sleep_in_process,
            {"duration": p["duration"], "busy": p["busy"], "ignore_cancel": p["ignore_cancel"],
             "stop_delay": p["stop_delay"]},
            grace=p["grace"],
        )
    elif p["ignore_cancel"]:
        await task.until_done(_sleep_async(p["duration"], p["busy"]))
    else:
        task.check_cancelled()
        await _sleep_async(p["duration"], p["busy"])


async def _sleep_async(duration: float, busy: bool) -> None:
    if not busy:
        await asyncio.sleep(duration)
        return
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        _burn(0.002)
        await asyncio.sleep(0)


def _burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _sleep_blocking(
    task: ThreadTaskHandle, duration: float, busy: bool, ignore_cancel: bool, stop_delay: float
) -> None:
    deadline = time.monotonic() + duration
    try:
        while (left := deadline - time.monotonic()) > 0:
            if busy:
                _burn(min(left, 0.001))
                if not ignore_cancel:
                    task.check_cancelled()
            elif ignore_cancel:
                time.sleep(left)
            else:
                task.sleep(left)
    except TaskCancelledError:
        if stop_delay:
            time.sleep(stop_delay)
        raise


def sleep_in_process(
    task: Any, *, duration: float, busy: bool, ignore_cancel: bool, stop_delay: float
) -> None:
    """The process-executor body of ``test:sleep`` (module level so a worker can import it)."""
    deadline = time.monotonic() + duration
    try:
        while (left := deadline - time.monotonic()) > 0:
            if busy:
                _burn(min(left, 0.001))
                if not ignore_cancel:
                    task.check_cancelled()
            elif ignore_cancel:
                time.sleep(left)
            else:
                task.sleep(left)
    except TaskCancelledError:
        if stop_delay:
            time.sleep(stop_delay)
        raise


def register_test_actions(registry: ActionRegistry) -> None:
    """Add ``test:sleep`` and its child action ``test:sleep[c]``."""
    for name, child in ((SLEEP, False), (SLEEP_CHILD, True)):
        registry.add(
            ActionSpec(
                name=name,
                fn=test_sleep,
                executor="async",
                cancellable=lambda params: bool(params.get("cancellable", True)),
                validate=lambda body, child=child: _validate(body, child=child),  # type: ignore[misc]
                description="sleep for a while (built-in test action)",
            )
        )
