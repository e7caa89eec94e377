"""Rich renderings of ``_tasks`` answers for the operator's CLI: tables, trees, one task, progress.

Progress convention: a task's ``status`` object shows a progress bar when it holds, checked in
this order (numbers only, booleans are not numbers):

1. ``progress``: a fraction from 0 to 1;
2. ``total`` with ``done``: items done out of ``total``;
3. ``total`` with any of ``created``, ``updated``, ``deleted``, ``noops``, ``version_conflicts``:
   their sum out of ``total`` (the status of Elasticsearch's reindex and update/delete by query);
4. ``elapsed_millis`` with ``duration_millis``: time spent out of the expected duration.

Anything else (``test:sleep`` reports ``phase`` and ``elapsed_millis`` but no duration) is shown as
its ``phase`` text, when it has one, without a bar.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from taskwarden.timevalue import format_time_value

__all__ = [
    "TaskProgress",
    "failures",
    "flatten_tasks",
    "list_view",
    "node_names_of",
    "outcome_view",
    "progress_of",
    "task_detail",
    "watch_table",
]

TaskInfo = Mapping[str, Any]
_ITEM_COUNTERS = ("created", "updated", "deleted", "noops", "version_conflicts")
_BAR_WIDTH = 24


@dataclass(frozen=True)
class TaskProgress:
    """How far a task has got: ``fraction`` in 0..1 and a short text such as ``3/10``."""

    fraction: float
    label: str


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _share(done: float, total: float) -> float | None:
    return min(1.0, max(0.0, done / total)) if total > 0 else None


def _count(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _millis(value: float) -> str:
    return format_time_value(int(value * 1e6))


def progress_of(status: Any) -> TaskProgress | None:
    """The task's progress under the convention in this module's docstring, or None."""
    if not isinstance(status, Mapping):
        return None
    progress = _number(status.get("progress"))
    if progress is not None:
        fraction = min(1.0, max(0.0, progress))
        return TaskProgress(fraction, f"{fraction:.0%}")
    total = _number(status.get("total"))
    if total is not None:
        done = _number(status.get("done"))
        if done is None:
            counters = [c for c in map(_number, map(status.get, _ITEM_COUNTERS)) if c is not None]
            done = sum(counters) if counters else None
        if done is not None and (share := _share(done, total)) is not None:
            return TaskProgress(share, f"{_count(done)}/{_count(total)} ({share:.0%})")
    elapsed = _number(status.get("elapsed_millis"))
    duration = _number(status.get("duration_millis"))
    if elapsed is not None and duration is not None and (
        (share := _share(elapsed, duration)) is not None
    ):
        return TaskProgress(share, f"{_millis(elapsed)} of {_millis(duration)}")
    return None


def _progress_cell(status: Any) -> RenderableType:
    progress = progress_of(status)
    if progress is None:
        phase = status.get("phase") if isinstance(status, Mapping) else None
        return Text(str(phase), style="dim") if phase is not None else Text("")
    row = Table.grid(padding=(0, 1))
    row.add_row(ProgressBar(total=1.0, completed=progress.fraction, width=_BAR_WIDTH),
                Text(progress.label))
    return row


def flatten_tasks(body: Mapping[str, Any]) -> list[TaskInfo]:
    """Every task of a list or cancel answer in any ``group_by`` shape, children included."""
    return [task for task, _ in _walk(body)]


def _walk(body: Mapping[str, Any]) -> Iterator[tuple[TaskInfo, str | None]]:
    """(task, node name when the answer carries it) for every task, parents before children."""
    nodes = body.get("nodes")
    if isinstance(nodes, Mapping):
        for node in nodes.values():
            for task in (node.get("tasks") or {}).values():
                yield task, node.get("name")
    tasks = body.get("tasks")
    if isinstance(tasks, Mapping):
        tasks = list(tasks.values())
    for task in tasks or []:
        yield from _with_children(task)


def _with_children(task: TaskInfo) -> Iterator[tuple[TaskInfo, str | None]]:
    yield task, None
    for child in task.get("children") or []:
        yield from _with_children(child)


def node_names_of(nodes_body: Any) -> dict[str, str]:
    """Node id to node name, from a ``GET /_nodes`` answer."""
    nodes = nodes_body.get("nodes") if isinstance(nodes_body, Mapping) else None
    if not isinstance(nodes, Mapping):
        return {}
    return {node_id: str(info.get("name", node_id)) for node_id, info in nodes.items()}


def _task_id(task: TaskInfo) -> str:
    return f"{task.get('node')}:{task.get('id')}"


def _running_time(task: TaskInfo) -> str:
    nanos = task.get("running_time_in_nanos")
    return format_time_value(nanos) if isinstance(nanos, int) else "-"


def _state(task: TaskInfo) -> Text:
    if task.get("cancelled"):
        return Text("cancelled", style="bold red")
    return Text("yes") if task.get("cancellable") else Text("no", style="dim")


def _opaque_id(task: TaskInfo) -> str:
    headers = task.get("headers") or {}
    return str(headers.get("X-Opaque-Id", ""))


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _node_label(task: TaskInfo, names: Mapping[str, str], fallback: str | None = None) -> str:
    node_id = str(task.get("node", ""))
    return fallback or names.get(node_id, node_id)


def _tasks_table(rows: list[tuple[TaskInfo, str]], *, detailed: bool,
                 title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    for header in ("task id", "action", "node", "type", "running", "cancellable", "X-Opaque-Id"):
        table.add_column(header, overflow="fold")
    if detailed:
        table.add_column("description", overflow="fold")
        table.add_column("status", overflow="fold")
    for task, node in rows:
        cells: list[RenderableType] = [
            Text(_task_id(task), style="bold"), Text(str(task.get("action", ""))), Text(node),
            Text(str(task.get("type", ""))), Text(_running_time(task), justify="right"),
            _state(task), Text(_opaque_id(task)),
        ]
        if detailed:
            status = task.get("status")
            cells += [Text(str(task.get("description", ""))),
                      Text(_compact(status) if status is not None else "")]
        table.add_row(*cells)
    return table


def list_view(body: Mapping[str, Any], *, group_by: str, detailed: bool,
              names: Mapping[str, str]) -> RenderableType:
    """A ``GET /_tasks`` (or cancel) answer: a table per node, one flat table, or a parent tree."""
    pairs = list(_walk(body))
    if not pairs:
        return Text("no tasks match", style="dim")
    if group_by == "parents":
        return _tree(body, detailed=detailed, names=names)
    if group_by == "nodes" and isinstance(body.get("nodes"), Mapping):
        tables: list[RenderableType] = []
        for node_id, node in body["nodes"].items():
            rows = [(task, str(node.get("name", node_id))) for task in node.get("tasks", {}).values()]
            title = f"{node.get('name', node_id)} ({node_id}, {node.get('transport_address', '')})"
            tables.append(_tasks_table(rows, detailed=detailed, title=title))
        return Group(*tables)
    rows = [(task, _node_label(task, names, name)) for task, name in pairs]
    return _tasks_table(rows, detailed=detailed)


def _tree(body: Mapping[str, Any], *, detailed: bool, names: Mapping[str, str]) -> Tree:
    tasks = body.get("tasks") or {}
    roots = list(tasks.values()) if isinstance(tasks, Mapping) else list(tasks)
    tree = Tree(Text("tasks", style="bold"), guide_style="dim")
    for task in roots:
        _add_branch(tree, task, detailed=detailed, names=names)
    return tree


def _add_branch(parent: Tree, task: TaskInfo, *, detailed: bool, names: Mapping[str, str]) -> None:
    label = Text.assemble(
        (_task_id(task), "bold"), " ", str(task.get("action", "")),
        (f"  {task.get('type', '')} on {_node_label(task, names)}", "dim"),
        f"  {_running_time(task)}",
    )
    if task.get("cancelled"):
        label.append("  cancelled", style="bold red")
    elif not task.get("cancellable"):
        label.append("  not cancellable", style="dim")
    if opaque := _opaque_id(task):
        label.append(f"  X-Opaque-Id={opaque}", style="cyan")
    if detailed:
        if description := task.get("description"):
            label.append(f"\n{description}", style="dim")
        if (status := task.get("status")) is not None:
            label.append(f"\nstatus {_compact(status)}", style="dim")
    branch = parent.add(label)
    for child in task.get("children") or []:
        _add_branch(branch, child, detailed=detailed, names=names)


def _started(task: TaskInfo) -> str:
    millis = task.get("start_time_in_millis")
    if not isinstance(millis, int):
        return "-"
    return datetime.fromtimestamp(millis / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def task_detail(body: Mapping[str, Any], names: Mapping[str, str]) -> Panel:
    """One ``GET /_tasks/{id}`` answer: the task's fields, its progress and whether it completed."""
    task: TaskInfo = body.get("task") or {}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    node_id = str(task.get("node", ""))
    node_name = names.get(node_id)
    grid.add_row("action", Text(str(task.get("action", ""))))
    grid.add_row("node", Text(f"{node_name} ({node_id})" if node_name else node_id))
    grid.add_row("type", Text(str(task.get("type", ""))))
    grid.add_row("started", Text(_started(task)))
    grid.add_row("running", Text(_running_time(task)))
    grid.add_row("cancellable", _state(task))
    if parent := task.get("parent_task_id"):
        grid.add_row("parent", Text(str(parent)))
    for name, value in (task.get("headers") or {}).items():
        grid.add_row(Text(name, style="bold"), Text(str(value)))
    if description := task.get("description"):
        grid.add_row("description", Text(str(description)))
    if (status := task.get("status")) is not None:
        grid.add_row("status", Text(_compact(status)))
        if progress_of(status) is not None:
            grid.add_row("progress", _progress_cell(status))
    completed = bool(body.get("completed"))
    grid.add_row("completed", Text("yes", style="green") if completed else Text("no, running"))
    return Panel(grid, title=Text(f"task {_task_id(task)}", style="bold"), title_align="left",
                 expand=False)


def outcome_view(body: Mapping[str, Any]) -> RenderableType:
    """The stored outcome of a completed task: its response, or its error and causes."""
    if isinstance(error := body.get("error"), Mapping):
        lines = Text.assemble(("error: ", "bold red"), _error_line(error))
        cause = error.get("caused_by")
        while isinstance(cause, Mapping):
            lines.append("\n  caused by: ")
            lines.append(_error_line(cause))
            cause = cause.get("caused_by")
        return lines
    if "response" in body:
        return Group(Text("response:", style="bold green"),
                     JSON.from_data(body["response"], indent=2, ensure_ascii=False))
    if body.get("completed"):
        return Text("completed, without a stored response", style="dim")
    return Text("still running", style="dim")


def _error_line(error: Mapping[str, Any]) -> str:
    return f"{error.get('type', 'exception')}: {error.get('reason', '')}"


def failures(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, ``type: reason``) for each ``node_failures`` and ``task_failures`` entry of an answer."""
    found: list[tuple[str, str]] = []
    for failure in body.get("node_failures") or []:
        cause = failure.get("caused_by")
        found.append((f"node [{failure.get('node_id', '?')}]",
                      _error_line(cause if isinstance(cause, Mapping) else failure)))
    for failure in body.get("task_failures") or []:
        reason = failure.get("reason")
        detail = _error_line(reason) if isinstance(reason, Mapping) else str(failure.get("status", ""))
        found.append((f"task [{failure.get('task_id', '?')}] on node [{failure.get('node_id', '?')}]",
                      detail))
    return found


def watch_table(tasks: list[TaskInfo], names: Mapping[str, str], caption: str) -> Table:
    """The live view of running tasks: the list columns plus each task's progress or phase."""
    table = Table(caption=caption, caption_justify="left")
    for header in ("task id", "action", "node", "running", "cancellable", "X-Opaque-Id", "progress"):
        table.add_column(header, overflow="fold")
    for task in tasks:
        table.add_row(
            Text(_task_id(task), style="bold"), Text(str(task.get("action", ""))),
            Text(_node_label(task, names)), Text(_running_time(task), justify="right"),
            _state(task), Text(_opaque_id(task)), _progress_cell(task.get("status")),
        )
    return table
