"""``taskwarden tasks list|get|cancel|watch`` and ``taskwarden cat tasks``: the operator's commands.

They speak only the public REST API, through :class:`taskwarden.client.Client`, with the
connection options of :mod:`taskwarden.cli.connection`. Exit codes: 0 done, 1 the server answered
an error (refused credentials included) or could not be reached, 2 a usage error.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType
from rich.live import Live

from taskwarden.cli import render
from taskwarden.cli.connection import (
    HTTP_TIMEOUT,
    JsonOption,
    connect,
    connection_callback,
    connection_options,
    print_json,
)
from taskwarden.client import Client
from taskwarden.errors import IllegalArgumentError, ResourceNotFoundError, TaskwardenError
from taskwarden.timevalue import parse_time_value

__all__ = ["cat_app", "tasks_app"]

_WAIT_MARGIN = 30.0  # seconds the HTTP client waits past the server-side timeout of a get

tasks_app = typer.Typer(
    name="tasks", help="List, inspect, cancel and watch tasks.", no_args_is_help=True,
    callback=connection_callback,
)
cat_app = typer.Typer(name="cat", help="Compact text tables (Elasticsearch _cat APIs).",
                      no_args_is_help=True, callback=connection_callback)

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


class GroupBy(StrEnum):
    nodes = "nodes"
    parents = "parents"
    none = "none"


ActionsOption = Annotated[
    str | None, typer.Option("--actions", help="Comma list of actions; * wildcards (test:*).")
]
NodesOption = Annotated[str | None, typer.Option("--nodes", help="Comma list of node selectors.")]
ParentOption = Annotated[
    str | None, typer.Option("--parent-task-id", help="Only children of this task (node_id:n).")
]


def _node_names(client: Client) -> dict[str, str]:
    return render.node_names_of(client.nodes())


def _csv(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def _seconds(raw: str, flag: str) -> float:
    """A positive time value (``500ms``, ``2s``) or a bare number of seconds."""
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = parse_time_value(raw, flag.lstrip("-")) / 1e9
        except IllegalArgumentError as exc:
            raise typer.BadParameter(exc.reason, param_hint=flag) from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise typer.BadParameter(f"must be a time of more than zero, got [{raw}]", param_hint=flag)
    return seconds


@tasks_app.command("list")
@connection_options
def list_tasks(
    ctx: typer.Context,
    actions: ActionsOption = None,
    nodes: NodesOption = None,
    parent_task_id: ParentOption = None,
    detailed: Annotated[bool, typer.Option("--detailed", help="Add description and status.")] = False,
    group_by: Annotated[
        GroupBy, typer.Option("--group-by", help="Group by node, nest children under parents, or flat.")
    ] = GroupBy.nodes,
    as_json: JsonOption = False,
) -> None:
    """List running tasks (GET /_tasks)."""
    with connect(ctx) as client:
        body = client.list_tasks(actions=actions, detailed=detailed or None, group_by=group_by.value,
                                 nodes=_csv(nodes), parent_task_id=parent_task_id)
        if as_json:
            print_json(body)
        else:
            names = {} if group_by is GroupBy.nodes else _node_names(client)
            _out.print(render.list_view(body, group_by=group_by.value, detailed=detailed, names=names))
    _warn_failures(body)


@tasks_app.command("get")
@connection_options
def get_task(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK_ID", help="Task id, node_id:number.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the task completes.")] = False,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="With --wait: how long (30s by default, -1: no limit).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show one task, whether it completed, and its stored response or error (GET /_tasks/{id})."""
    with connect(ctx, timeout=_get_http_timeout(wait, timeout)) as client:
        if wait:
            with _err.status(f"waiting for task [{task_id}] to complete"):
                body = client.get_task(task_id, wait_for_completion=True, timeout=timeout)
        else:
            body = client.get_task(task_id, timeout=timeout)
        if as_json:
            print_json(body)
            return
        names = _node_names(client)
    _out.print(render.task_detail(body, names))
    if body.get("completed"):
        _out.print(render.outcome_view(body))


def _get_http_timeout(wait: bool, timeout: str | None) -> float | None:
    """Long enough for the server's own wait to end first; a malformed value is the server's to reject."""
    if not wait:
        return HTTP_TIMEOUT
    try:
        nanos = parse_time_value(timeout or "30s", "timeout")
    except TaskwardenError:
        return HTTP_TIMEOUT
    return None if nanos < 0 else nanos / 1e9 + _WAIT_MARGIN


@tasks_app.command("cancel")
@connection_options
def cancel_tasks(
    ctx: typer.Context,
    task_id: Annotated[
        str | None, typer.Argument(metavar="TASK_ID", help="Task id, node_id:number.")
    ] = None,
    actions: ActionsOption = None,
    nodes: NodesOption = None,
    parent_task_id: ParentOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Return once the tasks and all their descendants stopped.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Cancel one task and its descendants, or every cancellable task the filters match."""
    if not (task_id or actions or nodes or parent_task_id):
        raise typer.BadParameter(
            "give a TASK_ID or at least one of --actions, --nodes, --parent-task-id "
            "(--actions '*' cancels every cancellable task)"
        )
    target = f"task [{task_id}]" if task_id else "the matching tasks"
    with connect(ctx, timeout=None if wait else HTTP_TIMEOUT) as client:
        def cancel() -> Any:
            return client.cancel(task_id=task_id, actions=actions, nodes=_csv(nodes),
                                 parent_task_id=parent_task_id, wait_for_completion=wait or None)

        if wait:
            with _err.status(f"cancelling {target}; waiting until it has stopped"):
                body = cancel()
        else:
            body = cancel()
    cancelled = render.flatten_tasks(body)
    if as_json:
        print_json(body)
    if task_id and not cancelled and body.get("node_failures"):
        # The server answers 200 for an unknown or uncancellable id; for an operator it failed.
        for _, detail in render.failures(body):
            typer.echo(f"error: {detail}", err=True)
        raise typer.Exit(1)
    if not as_json:
        _print_cancelled(body, len(cancelled), wait)
    _warn_failures(body)


def _print_cancelled(body: Any, count: int, waited: bool) -> None:
    if not count:
        _out.print("no cancellable task matched")
        return
    noun = "1 task" if count == 1 else f"{count} tasks"
    if waited:
        after = "; stopped, with all descendants"
    else:
        after = "; stopping in the background (--wait waits for them)"
    _out.print(f"cancelled {noun}{after}")
    _out.print(render.list_view(body, group_by="nodes", detailed=False, names={}))


def _warn_failures(body: Any) -> None:
    if isinstance(body, dict):
        for where, detail in render.failures(body):
            typer.echo(f"warning: {where}: {detail}", err=True)


@tasks_app.command("watch")
@connection_options
def watch_tasks(
    ctx: typer.Context,
    task_id: Annotated[
        str | None, typer.Argument(metavar="TASK_ID", help="Watch this task until it completes.")
    ] = None,
    actions: ActionsOption = None,
    nodes: NodesOption = None,
    parent_task_id: ParentOption = None,
    interval: Annotated[
        str, typer.Option("--interval", help="Time between refreshes (1s, 500ms, or seconds).")
    ] = "1s",
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many refreshes.")
    ] = None,
) -> None:
    """A live view of running tasks, or of one task until it finishes; Ctrl-C stops it (exit 0)."""
    period = _seconds(interval, "--interval")
    if task_id and (actions or nodes or parent_task_id):
        raise typer.BadParameter("filters cannot be combined with a TASK_ID")
    # Tagged so that the view can leave out the listing requests it makes itself.
    own_requests = f"taskwarden-watch-{os.getpid()}"
    with connect(ctx, headers={"X-Opaque-Id": own_requests}) as client:
        names = _node_names(client)
        if task_id:
            one = _OneTaskWatch(client, task_id, names)
            if _refresh_loop(one.frame, period, count):
                _out.print(one.outcome())
        else:
            def frame() -> tuple[RenderableType, bool]:
                body = client.list_tasks(actions=actions, nodes=_csv(nodes), detailed=True,
                                         parent_task_id=parent_task_id, group_by="none")
                tasks = [task for task in render.flatten_tasks(body)
                         if (task.get("headers") or {}).get("X-Opaque-Id") != own_requests]
                caption = (f"{len(tasks)} running at {datetime.now():%H:%M:%S}, "
                           f"every {interval}; Ctrl-C stops")
                return render.watch_table(tasks, names, caption), False

            _refresh_loop(frame, period, count)


class _OneTaskWatch:
    """Frames for ``watch TASK_ID``: the task until it completes, or until a foreground one is gone."""

    def __init__(self, client: Client, task_id: str, names: dict[str, str]) -> None:
        self.client, self.task_id, self.names = client, task_id, names
        self.last: dict[str, Any] | None = None
        self.gone = False

    def frame(self) -> tuple[RenderableType, bool]:
        try:
            self.last = self.client.get_task(self.task_id)
        except ResourceNotFoundError:
            if self.last is None:
                raise
            # Only background tasks store their outcome: a finished foreground task is just gone.
            self.gone = True
            return render.task_detail(self.last, self.names), True
        return render.task_detail(self.last, self.names), bool(self.last.get("completed"))

    def outcome(self) -> RenderableType:
        if self.gone or self.last is None:
            return f"task [{self.task_id}] has finished; it stored no outcome"
        return render.outcome_view(self.last)


def _refresh_loop(frame: Callable[[], tuple[RenderableType, bool]], period: float,
                  count: int | None) -> bool:
    """Redraw ``frame()`` every ``period`` seconds; True once it reports the end, False if stopped."""
    live: Live | None = None
    try:
        view, finished = frame()
        shown = 1
        with Live(view, console=_out, auto_refresh=False) as live:
            next_at = time.monotonic()
            while not finished and (count is None or shown < count):
                next_at += period
                time.sleep(max(0.0, next_at - time.monotonic()))
                view, finished = frame()
                live.update(view, refresh=True)
                shown += 1
    except KeyboardInterrupt:
        finished = False
    finally:
        if live is not None and not _out.is_terminal:
            _out.line()  # off a terminal, Live prints its last frame without ending the line
    return finished


@cat_app.command("tasks")
@connection_options
def cat_tasks(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--v", "-v", help="Print a header line.")] = False,
    headers: Annotated[str | None, typer.Option("--h", help="Columns to show (comma list).")] = None,
    sort: Annotated[str | None, typer.Option("--s", help="Columns to sort by (col:desc).")] = None,
    detailed: Annotated[bool, typer.Option("--detailed", help="Add the description column.")] = False,
    actions: ActionsOption = None,
    nodes: NodesOption = None,
    parent_task_id: ParentOption = None,
    output_format: Annotated[
        str | None, typer.Option("--format", help="text (default), json, yaml, ...")
    ] = None,
    time_unit: Annotated[str | None, typer.Option("--time", help="Unit for times (ms, s, ...).")] = None,
) -> None:
    """Print GET /_cat/tasks as the server renders it."""
    with connect(ctx) as client:
        text = client.cat_tasks(actions=actions, detailed=detailed or None, nodes=_csv(nodes),
                                parent_task_id=parent_task_id, h=headers, s=sort,
                                v=verbose or None, format=output_format, time=time_unit)
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
