"""``POST /_actions/{action}``: run an action as a task, waiting for it or in the background."""

from __future__ import annotations

import asyncio

from taskwarden.http.context import Reply, RestContext
from taskwarden.runtime.runner import Outcome
from taskwarden.tasks import CancelReason, CancelSource, Task
from taskwarden.timevalue import format_time_value

__all__ = ["ACTION_PARAMS", "run_action"]

ACTION_PARAMS = ("wait_for_completion", "timeout")
MAX_WAIT_NANOS = 7 * 24 * 3600 * 10**9


async def run_action(ctx: RestContext) -> Reply:
    name = ctx.path_param("action")
    wait = ctx.params.bool("wait_for_completion", True)
    limit = ctx.params.time_nanos("timeout", None, max_nanos=MAX_WAIT_NANOS)
    body = await ctx.json_body()
    task, outcome = await ctx.cluster.start_action(name, body, ctx.headers, background=not wait)
    if not wait:
        return Reply({"task": str(task.id)})
    result = await ctx.until_disconnect(task, _wait(ctx, task, outcome, limit))
    if result.error is not None:
        raise result.error
    return Reply(result.response)


async def _wait(
    ctx: RestContext, task: Task, outcome: asyncio.Future[Outcome], limit: int | None
) -> Outcome:
    """The outcome; past ``timeout`` the task is cancelled and its cancellation reported."""
    if limit is None or limit < 0:
        return await asyncio.shield(outcome)
    try:
        return await asyncio.wait_for(asyncio.shield(outcome), limit / 1e9)
    except TimeoutError:
        reason = CancelReason(
            f"timed out after [{format_time_value(limit)}] waiting for completion",
            CancelSource.USER,
        )
        await ctx.cluster.cancel_task(task, reason)
        return await asyncio.shield(outcome)
