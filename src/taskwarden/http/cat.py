"""The ``_cat`` tables: columns, rows, and rendering for ``h``, ``s``, ``v``, ``help``, ``format``.

Pure functions mirroring Elasticsearch's RestTable (and ``time``); the HTTP layer parses parameters.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any

from taskwarden.errors import ActionFailedError, IllegalArgumentError
from taskwarden.tasks import TaskInfo, simple_match
from taskwarden.timevalue import format_time_value

__all__ = ["NODE_COLUMNS", "TASK_COLUMNS", "CatColumn", "CatTable", "NodeView", "node_rows",
           "task_rows", "task_table"]

_TIME_UNITS = {"nanos": 1, "micros": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
               "h": 3600 * 10**9, "d": 86400 * 10**9}
# Formats Elasticsearch knows but taskwarden cannot produce (binary encodings).
_BINARY_FORMATS = frozenset({"cbor", "smile"})


@dataclass(frozen=True)
class CatColumn:
    """A column: ``numeric`` sorts as numbers, ``time`` honours ``?time=``; alignment as ES."""

    name: str
    aliases: tuple[str, ...]
    description: str
    default: bool
    numeric: bool = False
    time: bool = False
    right_align: bool = False


class CatTable:
    """Renders rows (column name -> raw value) the way Elasticsearch renders a cat table."""

    def __init__(self, columns: Sequence[CatColumn]) -> None:
        self.columns = list(columns)
        self._by_name = {c.name: c for c in self.columns}
        # As ES's Table.getAliasMap: later entries win, a column's own name after its aliases.
        self._sort_keys: dict[str, CatColumn] = {}
        for column in self.columns:
            for alias in column.aliases:
                self._sort_keys[alias] = column
            self._sort_keys[column.name] = column

    def render(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        headers: Sequence[str],
        sort: Sequence[str],
        verbose: bool,
        help: bool,
        format: str,
        time_unit: str | None,
    ) -> tuple[str | list[dict[str, Any]], str]:
        """``(body, kind)``: kind ``text``/``yaml`` carry a str, ``json`` a list of objects."""
        if help:
            return self._help(), "text"
        kind = _media_kind(format)
        display = self._display_columns(headers)
        ordered = self._ordered(rows, sort)
        cells = [[_render(row.get(c.name), c, time_unit) for c, _ in display] for row in ordered]
        if kind == "text":
            return _text(display, cells, verbose), "text"
        objects = [{shown: value for (_, shown), value in zip(display, line, strict=True)}
                   for line in cells]
        if kind == "json":
            return objects, "json"
        return _yaml(objects), "yaml"

    def _help(self) -> str:
        # ES pads every help cell, the description included, so lines carry trailing spaces.
        lines = [(c.name, ",".join(c.aliases), c.description or "not available")
                 for c in self.columns]
        widths = [max((_width(line[i]) for line in lines), default=0) for i in range(3)]
        return "".join(
            " | ".join(_pad(text, widths[i], right=False, last=False)
                       for i, text in enumerate(line)) + "\n"
            for line in lines
        )

    def _display_columns(self, requested: Sequence[str]) -> list[tuple[CatColumn, str]]:
        """Columns to show with the header each is shown under (the alias when asked by alias)."""
        tokens = _split(requested)
        if not tokens:
            return [(c, c.name) for c in self.columns if c.default]
        wanted: dict[str, None] = {}
        for token in tokens:
            if "*" not in token:
                wanted.setdefault(token)
                continue
            for column in self.columns:
                if simple_match(token, column.name) or any(
                    simple_match(token, alias) for alias in column.aliases
                ):
                    wanted.setdefault(column.name)
        shown: list[tuple[CatColumn, str]] = []
        for name in wanted:
            match = self._by_name.get(name)
            if match is None:
                # ES keeps the last column carrying the alias (``time`` -> running_time).
                for column in self.columns:
                    if name in column.aliases:
                        match = column
            # Names that match no column are dropped silently, as ES does.
            if match is not None:
                shown.append((match, name))
        return shown

    def _ordered(self, rows: Sequence[dict[str, Any]], sort: Sequence[str]) -> list[dict[str, Any]]:
        keys: list[tuple[CatColumn, bool]] = []
        for token in _split(sort):
            name, descending = token, False
            if token.endswith(":desc"):
                name, descending = token[: -len(":desc")], True
            elif token.endswith(":asc"):
                name = token[: -len(":asc")]
            column = self._sort_keys.get(name)
            if column is None:
                raise ActionFailedError(
                    f"Unable to sort by unknown sort key `{name}`",
                    es_type="unsupported_operation_exception",
                    status=400,
                )
            keys.append((column, descending))
        if not keys:
            return list(rows)

        def compare(left: dict[str, Any], right: dict[str, Any]) -> int:
            for column, descending in keys:
                result = _compare_cells(left.get(column.name), right.get(column.name), column)
                if result:
                    return -result if descending else result
            return 0

        return sorted(rows, key=cmp_to_key(compare))


def _media_kind(format: str) -> str:
    """ES picks the media type from ``format`` case-insensitively; unknown names mean text."""
    name = format.strip().lower()
    if name in ("json", "yaml"):
        return name
    if name in _BINARY_FORMATS:
        raise IllegalArgumentError(f"Unsupported format [{format}]")
    return "text"


def _split(values: Sequence[str]) -> list[str]:
    """ES's comma-list parsing: entries may hold commas; blanks are trimmed and dropped."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _render(value: Any, column: CatColumn, time_unit: str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if column.time and isinstance(value, int):
        unit = _TIME_UNITS.get(time_unit or "")
        if unit is None:
            # ES ignores a ``time`` value it does not know and prints the human form.
            return format_time_value(value)
        return str(value // unit if value >= 0 else -(-value // unit))
    return str(value)


def _number(value: Any) -> Any:
    if isinstance(value, str):
        for parse in (int, float):
            try:
                return parse(value)
            except ValueError:
                pass
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare_cells(left: Any, right: Any, column: CatColumn) -> int:
    """ES's TableIndexComparator: nulls first, like types natively, anything else as text."""
    if left is None or right is None:
        return (left is not None) - (right is not None)
    if column.numeric:
        left, right = _number(left), _number(right)
    if _is_number(left) and _is_number(right):
        return int(left > right) - int(left < right)
    left_text, right_text = str(left), str(right)
    return (left_text > right_text) - (left_text < right_text)


def _width(text: str) -> int:
    # ES measures Java string length, in UTF-16 code units.
    return len(text.encode("utf-16-le")) // 2


def _pad(text: str | None, width: int, *, right: bool, last: bool) -> str:
    value = text or ""
    leftover = width - _width(value)
    if leftover > 0 and right:
        return " " * leftover + value
    if last:
        return value
    return value + " " * max(leftover, 0)


def _text(
    display: list[tuple[CatColumn, str]], cells: list[list[str | None]], verbose: bool
) -> str:
    """Cells joined by one space, padded to the column width; the last column is not padded."""
    widths = [_width(shown) if verbose else 0 for _, shown in display]
    for line in cells:
        for i, value in enumerate(line):
            widths[i] = max(widths[i], _width(value or ""))
    last = len(display) - 1

    def join(values: Sequence[str | None]) -> str:
        return " ".join(
            _pad(value, widths[i], right=display[i][0].right_align, last=i == last)
            for i, value in enumerate(values)
        ) + "\n"

    header = [join([shown for _, shown in display])] if verbose else []
    return "".join(header + [join(line) for line in cells])


# Characters JSON leaves raw that YAML forbids, or reads as line breaks, inside quotes.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def _yaml_scalar(value: str | None) -> str:
    if value is None:
        return "null"
    quoted = json.dumps(value, ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda found: f"\\u{ord(found.group()):04x}", quoted)


def _yaml(objects: list[dict[str, Any]]) -> str:
    """What ES's YAML generator prints for an array of flat objects: ``---``, quoted strings."""
    if not objects:
        return "--- []\n"
    lines = ["---"]
    for obj in objects:
        # Keys are column names and aliases, all plain YAML scalars.
        entries = [f"{key}: {_yaml_scalar(value)}" for key, value in obj.items()] or ["{}"]
        lines.extend(("- " if i == 0 else "  ") + entry for i, entry in enumerate(entries))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- tasks

TASK_COLUMNS: list[CatColumn] = [
    CatColumn("id", (), "id of the task with the node", False, numeric=True),
    CatColumn("action", ("ac",), "task action", True),
    CatColumn("task_id", ("ti",), "unique task id", True),
    CatColumn("parent_task_id", ("pti",), "parent task id", True),
    CatColumn("type", ("ty",), "task type", True),
    CatColumn("start_time", ("start",), "start time in ms", True, numeric=True),
    CatColumn("timestamp", ("ts", "hms", "hhmmss"), "start time in HH:MM:SS", True),
    CatColumn("running_time_ns", ("time",), "running time ns", False, numeric=True),
    CatColumn("running_time", ("time",), "running time", True, numeric=True, time=True),
    CatColumn("node_id", ("ni",), "unique node id", False),
    CatColumn("ip", ("i",), "ip address", True),
    CatColumn("port", ("po",), "bound transport port", False, numeric=True),
    CatColumn("node", ("n",), "node name", True),
    CatColumn("version", ("v",), "es version", False),
    CatColumn("x_opaque_id", ("x",), "X-Opaque-ID header", False),
    # ES's own description text for this column.
    CatColumn("description", ("desc",), "task action", True),
    # taskwarden's own, after Elasticsearch's columns: resource_stats of detailed task info.
    CatColumn("cpu_time", ("cpu",), "CPU time used by the task (with detailed)", False,
              numeric=True, time=True, right_align=True),
    CatColumn("memory", ("mem",), "resident memory of the task's worker process (with detailed)",
              False, numeric=True, right_align=True),
]


_DETAILED_ONLY = frozenset({"description", "cpu_time", "memory"})


def task_table(*, detailed: bool) -> CatTable:
    """The ``_cat/tasks`` table; as in ES the description column (and, here, the resource
    columns) exist only when detailed."""
    return CatTable([c for c in TASK_COLUMNS if detailed or c.name not in _DETAILED_ONLY])


@dataclass(frozen=True)
class NodeView:
    """What the cat tables need to know about a node."""

    node_id: str
    name: str
    host: str
    ip: str
    port: int
    version: str
    roles: tuple[str, ...]
    attributes: dict[str, str]
    http_address: str


def _hhmmss(epoch_millis: int) -> str:
    return _dt.datetime.fromtimestamp(epoch_millis / 1000, tz=_dt.UTC).strftime("%H:%M:%S")


def _task_row(
    info: TaskInfo, node: NodeView | None, *, detailed: bool, full_id: bool
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": info.id,
        "action": info.action,
        "task_id": info.task_id,
        "parent_task_id": info.parent_task_id or "-",
        "type": info.type,
        "start_time": info.start_time_in_millis,
        "timestamp": _hhmmss(info.start_time_in_millis),
        "running_time_ns": info.running_time_in_nanos,
        "running_time": info.running_time_in_nanos,
        "node_id": info.node if full_id else info.node[:4],
        "ip": node.ip if node else "-",
        # ES fails here when the node has left the cluster; "-" is printed instead.
        "port": node.port if node else "-",
        "node": node.name if node else "-",
        "version": node.version if node else "-",
        "x_opaque_id": info.headers.get("X-Opaque-Id", "-"),
    }
    if detailed:
        row["description"] = info.description
        total = (info.resource_stats or {}).get("total") or {}
        row["cpu_time"] = total.get("cpu_time_in_nanos")
        row["memory"] = total.get("memory_in_bytes")
    return row


def task_rows(
    tasks: Sequence[tuple[TaskInfo, NodeView | None]], *, detailed: bool, full_id: bool
) -> list[dict[str, Any]]:
    """Rows in ES order: top-level tasks by start time, each followed by its subtree (pre-order).

    A task whose parent is not in the set counts as top-level. Tasks caught in a parent cycle
    (never reachable from a top-level one) are appended as extra roots rather than lost.
    """
    by_id = {info.task_id: (info, node) for info, node in tasks}
    children: dict[str, list[str]] = {}
    roots: list[str] = []
    for task_id, (info, _) in by_id.items():
        parent = info.parent_task_id
        if parent is not None and parent in by_id:
            children.setdefault(parent, []).append(task_id)
        else:
            roots.append(task_id)

    def by_start(ids: list[str]) -> list[str]:
        return sorted(ids, key=lambda task_id: by_id[task_id][0].start_time_in_millis)

    ordered: list[str] = []
    seen: set[str] = set()
    for start in by_start(roots) + by_start(list(by_id)):
        stack = [start]
        while stack:
            task_id = stack.pop()
            if task_id in seen:
                continue
            seen.add(task_id)
            ordered.append(task_id)
            stack.extend(reversed(by_start(children.get(task_id, []))))
    return [
        _task_row(*by_id[task_id], detailed=detailed, full_id=full_id) for task_id in ordered
    ]


# ----------------------------------------------------------------------------------------- nodes

# ES's cat nodes columns that have a taskwarden meaning; JVM heap, disk and index statistics
# have none and are left out.
NODE_COLUMNS: list[CatColumn] = [
    CatColumn("id", ("id", "nodeId"), "unique node id", False),
    CatColumn("pid", ("p",), "process id", False, numeric=True),
    CatColumn("ip", ("i",), "ip address", True),
    CatColumn("port", ("po",), "bound transport port", False, numeric=True),
    CatColumn("http_address", ("http",), "bound http address", False),
    CatColumn("version", ("v",), "es version", False),
    CatColumn("ram.percent", ("rp", "ramPercent"), "used machine memory ratio", True,
              numeric=True, right_align=True),
    CatColumn("cpu", ("cpu",), "recent cpu usage", True, numeric=True, right_align=True),
    CatColumn("load_1m", ("l",), "1m load avg", True, numeric=True, right_align=True),
    CatColumn("load_5m", ("l",), "5m load avg", True, numeric=True, right_align=True),
    CatColumn("load_15m", ("l",), "15m load avg", True, numeric=True, right_align=True),
    CatColumn("uptime", ("u",), "node uptime", False, numeric=True, time=True, right_align=True),
    CatColumn("node.role", ("r", "role", "nodeRole"),
              "m:master eligible node, d:data node, i:ingest node, r:remote cluster client, "
              "t:task node, -:no roles", True),
    CatColumn("master", ("m",), "*:current master", True),
    CatColumn("name", ("n",), "node name", True),
]


def _percent(value: Any) -> int | None:
    return None if value is None else round(float(value))


def _load(value: Any) -> str | None:
    # ES prints load averages with two decimals and leaves unknown (-1) ones empty.
    if value is None or float(value) < 0:
        return None
    return f"{float(value):.2f}"


def node_rows(
    nodes: Sequence[tuple[NodeView, dict[str, Any]]], *, full_id: bool
) -> list[dict[str, Any]]:
    """One row per node, in the given order.

    Stats keys read when present: ``uptime_millis``, ``pid``, ``cpu_percent``, ``ram_percent``,
    ``load_1m``, ``load_5m``, ``load_15m``; missing ones render empty (JSON null), as in ES.
    ``master`` is always ``-``: taskwarden elects no master.
    """
    rows: list[dict[str, Any]] = []
    for view, stats in nodes:
        uptime = stats.get("uptime_millis")
        roles = "".join(sorted(role[:1] for role in view.roles if role)) or "-"
        rows.append({
            "id": view.node_id if full_id else view.node_id[:4],
            "pid": stats.get("pid"),
            "ip": view.ip,
            "port": view.port,
            "http_address": view.http_address or "-",
            "version": view.version,
            "ram.percent": _percent(stats.get("ram_percent")),
            "cpu": _percent(stats.get("cpu_percent")),
            "load_1m": _load(stats.get("load_1m")),
            "load_5m": _load(stats.get("load_5m")),
            "load_15m": _load(stats.get("load_15m")),
            "uptime": None if uptime is None else int(uptime) * 1_000_000,
            "node.role": roles,
            "master": "-",
            "name": view.name,
        })
    return rows
