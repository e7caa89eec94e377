"""The _cat table renderer: layout, column selection, sorting, formats, and task/node rows."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from taskwarden.errors import ActionFailedError, IllegalArgumentError
from taskwarden.http.cat import (
    NODE_COLUMNS,
    TASK_COLUMNS,
    CatColumn,
    CatTable,
    NodeView,
    node_rows,
    task_rows,
    task_table,
)
from taskwarden.tasks import TaskInfo

START = 1_700_000_000_123  # 2023-11-14T22:13:20.123Z

NODE = NodeView(
    node_id="n1xyz",
    name="alpha",
    host="localhost",
    ip="127.0.0.1",
    port=9300,
    version="8.11.0",
    roles=("task", "master", "data"),
    attributes={},
    http_address="127.0.0.1:9200",
)


def task(
    task_id: int,
    *,
    action: str = "test:sleep",
    start: int = START,
    running: int = 1_500_000,
    parent: str | None = None,
    node: str = "n1xyz",
    headers: dict[str, str] | None = None,
    description: str | None = None,
) -> TaskInfo:
    return TaskInfo(
        node=node,
        id=task_id,
        type="transport",
        action=action,
        status=None,
        description=description,
        start_time_in_millis=start,
        running_time_in_nanos=running,
        cancellable=True,
        cancelled=False,
        parent_task_id=parent,
        headers=headers or {},
    )


def render(
    table: CatTable,
    rows: list[dict[str, Any]],
    *,
    h: tuple[str, ...] = (),
    s: tuple[str, ...] = (),
    v: bool = False,
    help: bool = False,
    format: str = "text",
    time: str | None = None,
) -> Any:
    return table.render(
        rows, headers=h, sort=s, verbose=v, help=help, format=format, time_unit=time
    )


def text(table: CatTable, rows: list[dict[str, Any]], **params: Any) -> str:
    body, kind = render(table, rows, **params)
    assert kind == "text"
    assert isinstance(body, str)
    return body


def two_tasks() -> list[dict[str, Any]]:
    search = task(7, action="indices:data/read/search")
    lists = task(
        12,
        action="cluster:monitor/tasks/lists",
        start=START + 877,
        running=236_000,
        parent="n1xyz:7",
    )
    return task_rows([(lists, NODE), (search, NODE)], detailed=False, full_id=False)


# ------------------------------------------------------------------------------- text layout


def test_default_columns_with_header_row_are_aligned_and_last_column_unpadded() -> None:
    body = text(task_table(detailed=False), two_tasks(), v=True)
    assert body == (
        "action                      task_id  parent_task_id type      start_time    "
        "timestamp running_time ip        node\n"
        "indices:data/read/search    n1xyz:7  -              transport 1700000000123 "
        "22:13:20  1.5ms        127.0.0.1 alpha\n"
        "cluster:monitor/tasks/lists n1xyz:12 n1xyz:7        transport 1700000001000 "
        "22:13:21  236micros    127.0.0.1 alpha\n"
    )


def test_without_v_there_is_no_header_row_and_widths_ignore_header_names() -> None:
    body = text(task_table(detailed=False), two_tasks(), h=("ti", "pti"))
    assert body == "n1xyz:7  -\nn1xyz:12 n1xyz:7\n"


def test_empty_table_renders_only_the_header_row() -> None:
    table = task_table(detailed=False)
    assert text(table, [], v=True, h=("action", "node")) == "action node\n"
    assert text(table, []) == ""


def test_right_aligned_columns_pad_on_the_left_including_header() -> None:
    view = NODE
    stats = {"cpu_percent": 5, "load_1m": 0.5}
    rows = node_rows([(view, stats), (view, {"cpu_percent": 100, "load_1m": 12.25})], full_id=False)
    body = text(CatTable(NODE_COLUMNS), rows, v=True, h=("cpu", "load_1m", "name"))
    assert body == "cpu load_1m name\n  5    0.50 alpha\n100   12.25 alpha\n"


def test_missing_values_render_empty_in_text_and_null_in_json() -> None:
    rows = node_rows([(NODE, {})], full_id=False)
    table = CatTable(NODE_COLUMNS)
    assert text(table, rows, h=("pid", "name")) == " alpha\n"
    body, kind = render(table, rows, h=("pid", "name"), format="json")
    assert (body, kind) == ([{"pid": None, "name": "alpha"}], "json")


# ------------------------------------------------------------------------------------- h


def test_h_accepts_aliases_and_shows_the_alias_as_header() -> None:
    body = text(task_table(detailed=False), two_tasks(), v=True, h=("ti,ac", "n"))
    assert body.splitlines() == [
        "ti       ac                          n",
        "n1xyz:7  indices:data/read/search    alpha",
        "n1xyz:12 cluster:monitor/tasks/lists alpha",
    ]


def test_shared_alias_time_selects_the_last_column_carrying_it() -> None:
    body, _ = render(task_table(detailed=False), two_tasks(), h=("time",), format="json")
    assert body == [{"time": "1.5ms"}, {"time": "236micros"}]


def test_h_wildcard_expands_over_names_and_aliases_in_table_order() -> None:
    body, _ = render(task_table(detailed=False), two_tasks()[:1], h=("*time*",), format="json")
    assert list(body[0]) == ["start_time", "timestamp", "running_time_ns", "running_time"]
    body, _ = render(task_table(detailed=False), two_tasks()[:1], h=("t*",), format="json")
    # "ts" is an alias of timestamp, "time" of both running times; each column appears once.
    assert list(body[0]) == ["task_id", "type", "timestamp", "running_time_ns", "running_time"]


def test_unknown_columns_in_h_are_dropped_silently() -> None:
    body = text(task_table(detailed=False), two_tasks(), h=("bogus", "action", "nope*"))
    assert body == "indices:data/read/search\ncluster:monitor/tasks/lists\n"


def test_description_column_exists_only_when_detailed() -> None:
    info = task(1, description="sleep for 5s")
    plain = task_rows([(info, NODE)], detailed=False, full_id=False)
    detailed = task_rows([(info, NODE)], detailed=True, full_id=False)
    body, _ = render(task_table(detailed=False), plain, h=("action", "description"), format="json")
    assert body == [{"action": "test:sleep"}]
    body, _ = render(task_table(detailed=True), detailed, format="json")
    assert list(body[0])[-1] == "description"
    assert body[0]["description"] == "sleep for 5s"


# ------------------------------------------------------------------------------------- s


def test_sort_descending_on_start_time_by_alias() -> None:
    body = text(task_table(detailed=False), two_tasks(), h=("id",), s=("start:desc",))
    assert body == "12\n7\n"


def test_sort_on_several_columns_with_mixed_directions() -> None:
    infos = [
        task(1, action="b", start=START + 1),
        task(2, action="a", start=START + 2),
        task(3, action="b", start=START + 3),
        task(4, action="a", start=START + 4),
    ]
    rows = task_rows([(i, NODE) for i in infos], detailed=False, full_id=False)
    body = text(task_table(detailed=False), rows, h=("id",), s=("action:asc", "start_time:desc"))
    assert body.split() == ["4", "2", "3", "1"]


def test_numeric_columns_sort_as_numbers_not_text() -> None:
    infos = [task(10, start=START), task(9, start=START + 1), task(100, start=START + 2)]
    rows = task_rows([(i, NODE) for i in infos], detailed=False, full_id=False)
    body = text(task_table(detailed=False), rows, h=("id",), s=("id",))
    assert body.split() == ["9", "10", "100"]
    loads = node_rows([(NODE, {"load_1m": 10.0}), (NODE, {"load_1m": 9.5})], full_id=False)
    body = text(CatTable(NODE_COLUMNS), loads, h=("load_1m",), s=("load_1m",))
    assert body.split() == ["9.50", "10.00"]


def test_sort_by_time_alias_uses_running_nanos_not_the_rendered_text() -> None:
    infos = [task(1, running=2_000_000_000), task(2, running=900_000_000)]
    rows = task_rows([(i, NODE) for i in infos], detailed=False, full_id=False)
    body = text(task_table(detailed=False), rows, h=("time",), s=("time",))
    assert body.split() == ["900ms", "2s"]


def test_sort_puts_missing_values_first_and_keeps_input_order_for_ties() -> None:
    rows = node_rows(
        [(NODE, {"pid": 30}), (NODE, {}), (NODE, {"pid": 20}), (NODE, {"pid": 20})], full_id=True
    )
    for position, row in enumerate(rows):
        row["id"] = f"node{position}"
    body, _ = render(CatTable(NODE_COLUMNS), rows, h=("id", "p"), s=("pid",), format="json")
    assert [r["id"] for r in body] == ["node1", "node2", "node3", "node0"]


def test_unknown_sort_key_is_rejected_with_elasticsearch_s_type_and_reason() -> None:
    with pytest.raises(ActionFailedError) as caught:
        render(task_table(detailed=False), two_tasks(), s=("action", "bogus:desc"))
    assert caught.value.type == "unsupported_operation_exception"
    assert caught.value.http_status == 400  # ES answers 500: bad input is never a 500 here
    assert caught.value.reason == "Unable to sort by unknown sort key `bogus`"


# ---------------------------------------------------------------------------------- help


def test_help_lists_name_aliases_description_padded_in_three_columns() -> None:
    table = CatTable(
        [
            CatColumn("id", (), "", False),
            CatColumn("timestamp", ("ts", "hms"), "start time", True),
        ]
    )
    body, kind = render(table, [], help=True, format="json")
    assert kind == "text"
    assert body == "id        |        | not available\ntimestamp | ts,hms | start time   \n"


def test_help_of_task_table_follows_detailed() -> None:
    body, _ = render(task_table(detailed=False), [], help=True)
    lines = body.splitlines()
    assert [line.split(" | ")[0].strip() for line in lines] == [
        c.name for c in TASK_COLUMNS if c.name not in ("description", "cpu_time", "memory")
    ]
    assert lines[0] == "id              |               | id of the task with the node"
    assert "timestamp       | ts,hms,hhmmss | start time in HH:MM:SS      " in lines
    body, _ = render(task_table(detailed=True), [], help=True)
    names = [line.split(" | ")[0].strip() for line in body.splitlines()]
    assert names[-3:] == ["description", "cpu_time", "memory"]


# ------------------------------------------------------------------------------- formats


def test_json_values_are_strings_keyed_by_column() -> None:
    body, kind = render(task_table(detailed=False), two_tasks(), format="json")
    assert kind == "json"
    assert body[0] == {
        "action": "indices:data/read/search",
        "task_id": "n1xyz:7",
        "parent_task_id": "-",
        "type": "transport",
        "start_time": "1700000000123",
        "timestamp": "22:13:20",
        "running_time": "1.5ms",
        "ip": "127.0.0.1",
        "node": "alpha",
    }


def test_yaml_is_a_quoted_sequence_of_mappings() -> None:
    body, kind = render(task_table(detailed=False), two_tasks(), h=("id", "ac"), format="YAML")
    assert kind == "yaml"
    assert body == (
        '---\n- id: "7"\n  ac: "indices:data/read/search"\n'
        '- id: "12"\n  ac: "cluster:monitor/tasks/lists"\n'
    )
    assert yaml.safe_load(body) == [
        {"id": "7", "ac": "indices:data/read/search"},
        {"id": "12", "ac": "cluster:monitor/tasks/lists"},
    ]


def test_yaml_escapes_awkward_text_and_renders_empty_and_null() -> None:
    odd = 'say "hi"\n\tback\\slash \x7f \u2028 café: - #'
    rows = task_rows([(task(1, description=odd), None)], detailed=True, full_id=False)
    rows.append(task_rows([(task(2), None)], detailed=True, full_id=False)[0])
    body, _ = render(task_table(detailed=True), rows, h=("desc",), format="yaml")
    assert yaml.safe_load(body) == [{"desc": odd}, {"desc": None}]
    assert render(task_table(detailed=False), [], format="yaml")[0] == "--- []\n"


@pytest.mark.parametrize("fmt", ["txt", "text", "", "xml", "TXT"])
def test_text_is_the_default_and_unknown_formats_fall_back_to_it(fmt: str) -> None:
    body, kind = render(task_table(detailed=False), two_tasks(), h=("id",), format=fmt)
    assert (body, kind) == ("7\n12\n", "text")


@pytest.mark.parametrize("fmt", ["cbor", "SMILE"])
def test_binary_formats_are_refused(fmt: str) -> None:
    with pytest.raises(IllegalArgumentError) as caught:
        render(task_table(detailed=False), two_tasks(), format=fmt)
    assert caught.value.reason == f"Unsupported format [{fmt}]"
    assert caught.value.http_status == 400


@pytest.mark.parametrize(
    ("unit", "shown"),
    [
        ("nanos", "1500000"),
        ("micros", "1500"),
        ("ms", "1"),
        ("s", "0"),
        ("d", "0"),
        (None, "1.5ms"),
        ("fortnights", "1.5ms"),
    ],
)
def test_time_unit_renders_time_columns_as_truncated_integers(unit: str | None, shown: str) -> None:
    body, _ = render(
        task_table(detailed=False), two_tasks()[:1], h=("running_time", "running_time_ns"),
        format="json", time=unit,
    )
    assert body == [{"running_time": shown, "running_time_ns": "1500000"}]


# ------------------------------------------------------------------------------ task rows


def order(rows: list[dict[str, Any]]) -> list[int]:
    return [row["id"] for row in rows]


def test_rows_follow_the_task_tree_with_siblings_by_start_time() -> None:
    infos = [
        task(3, start=300, parent="n1xyz:1"),  # child of 1, started after its sibling
        task(1, start=100),
        task(5, start=10, parent="gone:9"),  # parent not listed: top level
        task(4, start=400, parent="n1xyz:2"),  # grandchild of 1
        task(6, start=50),
        task(2, start=200, parent="n1xyz:1"),
    ]
    rows = task_rows([(i, NODE) for i in infos], detailed=False, full_id=False)
    assert order(rows) == [5, 6, 1, 2, 4, 3]


def test_tasks_in_a_parent_cycle_are_still_listed() -> None:
    infos = [task(1, start=10, parent="n1xyz:2"), task(2, start=5, parent="n1xyz:1"), task(3)]
    rows = task_rows([(i, NODE) for i in infos], detailed=False, full_id=False)
    assert sorted(order(rows)) == [1, 2, 3]
    assert order(rows)[1:] in ([2, 1], [1, 2])


def test_task_row_values() -> None:
    info = task(42, headers={"X-Opaque-Id": "batch-7"}, node="abcdefgh")
    (row,) = task_rows([(info, NODE)], detailed=False, full_id=False)
    assert row["node_id"] == "abcd"
    assert row["x_opaque_id"] == "batch-7"
    assert row["timestamp"] == "22:13:20"
    assert (row["ip"], row["port"], row["node"], row["version"]) == (
        "127.0.0.1", 9300, "alpha", "8.11.0"
    )
    assert "description" not in row
    (full,) = task_rows([(info, NODE)], detailed=True, full_id=True)
    assert full["node_id"] == "abcdefgh"
    assert full["description"] is None


def test_task_on_unknown_node_shows_dashes() -> None:
    (row,) = task_rows([(task(1), None)], detailed=False, full_id=False)
    assert (row["ip"], row["port"], row["node"], row["version"], row["x_opaque_id"]) == (
        "-", "-", "-", "-", "-"
    )
    body = text(task_table(detailed=False), [row], h=("port", "node"))
    assert body == "- -\n"


def test_task_columns_match_the_reference() -> None:
    assert [(c.name, c.aliases, c.default) for c in TASK_COLUMNS] == [
        ("id", (), False),
        ("action", ("ac",), True),
        ("task_id", ("ti",), True),
        ("parent_task_id", ("pti",), True),
        ("type", ("ty",), True),
        ("start_time", ("start",), True),
        ("timestamp", ("ts", "hms", "hhmmss"), True),
        ("running_time_ns", ("time",), False),
        ("running_time", ("time",), True),
        ("node_id", ("ni",), False),
        ("ip", ("i",), True),
        ("port", ("po",), False),
        ("node", ("n",), True),
        ("version", ("v",), False),
        ("x_opaque_id", ("x",), False),
        ("description", ("desc",), True),
        # taskwarden's resource columns follow Elasticsearch's.
        ("cpu_time", ("cpu",), False),
        ("memory", ("mem",), False),
    ]


# ------------------------------------------------------------------------------ node rows


def test_node_rows_default_columns() -> None:
    stats = {"uptime_millis": 90_000, "pid": 4242, "cpu_percent": 12.6, "ram_percent": 40.2,
             "load_1m": 0.25, "load_5m": -1}
    rows = node_rows([(NODE, stats)], full_id=False)
    body, _ = render(CatTable(NODE_COLUMNS), rows, format="json")
    assert body == [{
        "ip": "127.0.0.1",
        "ram.percent": "40",
        "cpu": "13",
        "load_1m": "0.25",
        "load_5m": None,
        "load_15m": None,
        "node.role": "dmt",
        "master": "-",
        "name": "alpha",
    }]


def test_node_rows_optional_columns_and_uptime_unit() -> None:
    rows = node_rows([(NODE, {"uptime_millis": 90_000, "pid": 4242})], full_id=False)
    table = CatTable(NODE_COLUMNS)
    body, _ = render(table, rows, h=("id", "p", "po", "http", "v", "u"), format="json")
    assert body == [{"id": "n1xy", "p": "4242", "po": "9300", "http": "127.0.0.1:9200",
                     "v": "8.11.0", "u": "1.5m"}]
    body, _ = render(table, rows, h=("uptime",), format="json", time="s")
    assert body == [{"uptime": "90"}]
    (full,) = node_rows([(NODE, {})], full_id=True)
    assert full["id"] == "n1xyz"


def test_node_without_roles_shows_dash() -> None:
    bare = NodeView("n2", "beta", "h", "10.0.0.2", 9300, "8.11.0", (), {}, "")
    (row,) = node_rows([(bare, {})], full_id=False)
    assert (row["node.role"], row["http_address"]) == ("-", "-")
