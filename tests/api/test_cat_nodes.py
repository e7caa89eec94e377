"""``GET /``, ``GET /_nodes``, ``GET /_cat/tasks`` and ``GET /_cat/nodes`` over real HTTP."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from nodeproc import NodeProcess

DEFAULT_TASK_COLUMNS = [
    "action", "task_id", "parent_task_id", "type", "start_time", "timestamp", "running_time", "ip", "node",
]
ALL_TASK_COLUMNS = [
    "id", "action", "task_id", "parent_task_id", "type", "start_time", "timestamp", "running_time_ns",
    "running_time", "node_id", "ip", "port", "node", "version", "x_opaque_id",
]
DEFAULT_NODE_COLUMNS = [
    "ip", "ram.percent", "cpu", "load_1m", "load_5m", "load_15m", "node.role", "master", "name",
]
TIME_VALUE = re.compile(r"\d+(\.\d)?(nanos|micros|ms|s|m|h|d)")


def address_of(node: NodeProcess) -> tuple[str, int]:
    host, port = node.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def cat(node: NodeProcess, path: str, **params: str) -> httpx.Response:
    response = node.get(path, params=params)
    assert response.status_code == 200, response.text
    return response


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


@dataclass(frozen=True)
class Family:
    """A running ``test:sleep`` with two children, started with an X-Opaque-Id."""

    parent: str
    opaque: str
    children: list[str]


@pytest.fixture
def family(shared_node: NodeProcess) -> Iterator[Family]:
    opaque = f"cat-{uuid.uuid4().hex}"
    response = shared_node.post(
        "/_actions/test:sleep", params={"wait_for_completion": "false"}, json={"children_per_node": 2},
        headers={"X-Opaque-Id": opaque},
    )
    assert response.status_code == 200, response.text
    parent = response.json()["task"]

    def children() -> list[str]:
        body = shared_node.get("/_tasks", params={"parent_task_id": parent, "group_by": "none"}).json()
        return sorted(f"{t['node']}:{t['id']}" for t in body["tasks"])

    shared_node.wait_until(lambda: len(children()) == 2, message="children never started")
    try:
        yield Family(parent, opaque, children())
    finally:
        shared_node.post(f"/_tasks/{parent}/_cancel", params={"wait_for_completion": "true"})


# ------------------------------------------------------------------------------------------ root


def test_root_describes_the_node(shared_node: NodeProcess) -> None:
    response = shared_node.get("/")
    assert response.status_code == 200
    assert response.headers["X-Elastic-Product"] == "Elasticsearch"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["name", "cluster_name", "cluster_uuid", "version", "tagline"]
    assert body["name"] == "shared"
    assert body["cluster_name"] == "taskwarden"
    assert isinstance(body["cluster_uuid"], str) and body["cluster_uuid"]
    assert body["version"]["number"] == "9.0.0"
    assert isinstance(body["version"]["taskwarden"], str)
    assert body["tagline"] == "You Know, for Tasks"
    # Stable across calls.
    assert shared_node.get("/").json() == body


def test_root_and_nodes_follow_the_command_line(tmp_path: Path) -> None:
    node = NodeProcess(
        tmp_path / "named", node_name="blue-1",
        extra_args=["--cluster-name", "blue", "--attr", "zone=a", "--attr", "rack=r7"],
    )
    node.start()
    try:
        root = node.get("/").json()
        assert root["name"] == "blue-1" and root["cluster_name"] == "blue"
        info = node.get("/_nodes").json()
        assert info["cluster_name"] == "blue"
        [entry] = info["nodes"].values()
        assert entry["name"] == "blue-1"
        assert entry["attributes"] == {"zone": "a", "rack": "r7"}
        assert list(node.get("/_nodes/zone:a").json()["nodes"]) == list(info["nodes"])
        assert node.get("/_nodes/zone:b").json()["nodes"] == {}
        assert node.get("/_nodes/rack:r*").json()["_nodes"]["total"] == 1
        names = cat(node, "/_cat/nodes", h="name").text
        assert names == "blue-1\n"
    finally:
        node.stop()


# ---------------------------------------------------------------------------------------- _nodes


def test_nodes_info(shared_node: NodeProcess) -> None:
    body = shared_node.get("/_nodes").json()
    assert list(body) == ["_nodes", "cluster_name", "nodes"]
    assert body["_nodes"] == {"total": 1, "successful": 1, "failed": 0}
    assert body["cluster_name"] == "taskwarden"
    nid = shared_node.node_id
    entry = body["nodes"][nid]
    host, port = address_of(shared_node)
    assert entry["name"] == "shared"
    assert entry["transport_address"] == f"{host}:{port}"
    assert entry["host"] == host
    assert entry["ip"] == host
    assert entry["version"] == "9.0.0"
    assert entry["roles"] == sorted(entry["roles"]) and entry["roles"]
    assert entry["attributes"] == {}
    assert entry["http"]["publish_address"] == f"{host}:{port}"
    assert entry["http"]["bound_address"] == [f"{host}:{port}"]
    assert isinstance(entry["start_time_in_millis"], int)


@pytest.mark.parametrize("selector", ["_local", "_all", "shared", "sh*", "{id}", "ghost,_local", "_master"])
def test_nodes_info_selectors_that_match(shared_node: NodeProcess, selector: str) -> None:
    nid = shared_node.node_id
    body = shared_node.get(f"/_nodes/{selector.replace('{id}', nid)}").json()
    assert body["_nodes"] == {"total": 1, "successful": 1, "failed": 0}
    assert list(body["nodes"]) == [nid]


@pytest.mark.parametrize("selector", ["ghost", "zone:a", "master:true", "nope*"])
def test_nodes_info_selectors_that_match_nothing(shared_node: NodeProcess, selector: str) -> None:
    response = shared_node.get(f"/_nodes/{selector}")
    assert response.status_code == 200
    body = response.json()
    assert body["_nodes"] == {"total": 0, "successful": 0, "failed": 0}
    assert body["nodes"] == {}


def test_nodes_info_filter_path_and_pretty(shared_node: NodeProcess) -> None:
    response = shared_node.get("/_nodes", params={"filter_path": "nodes.*.name", "pretty": "true"})
    nid = shared_node.node_id
    assert response.json() == {"nodes": {nid: {"name": "shared"}}}
    assert response.text == f'{{\n  "nodes": {{\n    "{nid}": {{\n      "name": "shared"\n    }}\n  }}\n}}\n'


# ------------------------------------------------------------------------------------ _cat/tasks


def test_cat_tasks_default_columns(shared_node: NodeProcess, family: Family) -> None:
    response = cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, v="true")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["X-Elastic-Product"] == "Elasticsearch"
    lines = response.text.splitlines()
    assert lines[0].split() == DEFAULT_TASK_COLUMNS
    body = rows(response.text)[1:]
    assert sorted(r[1] for r in body) == family.children
    host, _ = address_of(shared_node)
    for row in body:
        action, _task_id, parent, kind, start, stamp, running_time, ip, name = row
        assert action == "test:sleep[c]"
        assert parent == family.parent
        assert kind == "direct"
        expected = datetime.fromtimestamp(int(start) / 1000, tz=UTC).strftime("%H:%M:%S")
        assert stamp == expected
        assert TIME_VALUE.fullmatch(running_time), running_time
        assert ip == host
        assert name == "shared"
    # Columns are aligned: each header starts where its values start.
    starts = [lines[0].index(column) for column in DEFAULT_TASK_COLUMNS]
    for line in lines[1:]:
        for offset in starts[1:]:
            assert line[offset - 1] == " " and line[offset] != " ", (line, offset)


def test_cat_tasks_without_v_has_no_header(shared_node: NodeProcess, family: Family) -> None:
    text = cat(shared_node, "/_cat/tasks", parent_task_id=family.parent).text
    assert len(text.splitlines()) == 2
    assert "task_id" not in text


def test_cat_tasks_lists_parents_before_their_children(shared_node: NodeProcess, family: Family) -> None:
    text = cat(shared_node, "/_cat/tasks", actions="test:sleep*", h="ti,pti,x").text
    ours = [r for r in rows(text) if r[2] == family.opaque]
    assert ours[0][0] == family.parent
    assert sorted(r[0] for r in ours[1:]) == family.children
    assert [r[1] for r in ours] == ["-", family.parent, family.parent]


def test_cat_tasks_h_picks_columns_by_name_alias_and_wildcard(
    shared_node: NodeProcess, family: Family
) -> None:
    text = cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, h="ti,x,ac,id", v="true").text
    header, *body = rows(text)
    assert header == ["ti", "x", "ac", "id"]
    for task_id, opaque, action, number in body:
        assert task_id in family.children
        assert opaque == family.opaque
        assert action == "test:sleep[c]"
        assert task_id.endswith(f":{number}")
    text = cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, h="*_id", v="true").text
    header, *body = rows(text)
    assert header == ["task_id", "parent_task_id", "node_id", "x_opaque_id"]
    nid = shared_node.node_id
    assert all(row[2] == nid[:4] and row[3] == family.opaque for row in body)
    text = cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, h="ni", full_id="true").text
    assert rows(text) == [[nid], [nid]]


def test_cat_tasks_sort(shared_node: NodeProcess, family: Family) -> None:
    for order, reverse in (("id", False), ("id:asc", False), ("id:desc", True)):
        text = cat(shared_node, "/_cat/tasks", actions="test:sleep*", h="id,x", s=order).text
        ids = [int(r[0]) for r in rows(text) if r[1] == family.opaque]
        assert len(ids) == 3
        assert ids == sorted(ids, reverse=reverse)
    response = shared_node.get("/_cat/tasks", params={"s": "nonsense"})
    assert response.status_code == 400  # ES answers 500 (an unchecked exception): see compatibility
    assert response.json()["error"]["reason"] == "Unable to sort by unknown sort key `nonsense`"


def test_cat_tasks_help(shared_node: NodeProcess) -> None:
    text = cat(shared_node, "/_cat/tasks", help="true").text
    names = [line.split("|")[0].strip() for line in text.splitlines()]
    assert names == ALL_TASK_COLUMNS
    aliases = {line.split("|")[0].strip(): line.split("|")[1].strip() for line in text.splitlines()}
    assert aliases["timestamp"] == "ts,hms,hhmmss"
    assert aliases["x_opaque_id"] == "x"
    detailed = cat(shared_node, "/_cat/tasks", help="true", detailed="true").text
    detailed_names = [line.split("|")[0].strip() for line in detailed.splitlines()]
    assert detailed_names == [*ALL_TASK_COLUMNS, "description", "cpu_time", "memory"]


def test_cat_tasks_detailed_adds_description(shared_node: NodeProcess, family: Family) -> None:
    text = cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, detailed="true", v="true").text
    lines = text.splitlines()
    assert lines[0].split() == [*DEFAULT_TASK_COLUMNS, "description"]
    for line in lines[1:]:
        assert line.endswith("sleep for a while (built-in test action)")


def test_cat_tasks_format_json(shared_node: NodeProcess, family: Family) -> None:
    response = cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, format="json")
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, list) and len(body) == 2
    for row in body:
        assert list(row) == DEFAULT_TASK_COLUMNS
        assert all(isinstance(value, str) for value in row.values())
        assert row["start_time"].isdigit()
    picked = cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, format="json", h="ti,x").json()
    assert sorted(picked, key=lambda r: r["ti"]) == [{"ti": c, "x": family.opaque} for c in family.children]
    pretty = cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, format="json", pretty="true")
    assert pretty.text.startswith("[\n  {\n")


def test_cat_tasks_format_yaml(shared_node: NodeProcess, family: Family) -> None:
    response = cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, format="yaml", h="ti,pti,x")
    assert response.headers["content-type"].startswith("application/yaml")
    assert response.text.startswith("---\n")
    parsed: Any = yaml.safe_load(response.text)
    assert sorted(parsed, key=lambda r: r["ti"]) == [
        {"ti": c, "pti": family.parent, "x": family.opaque} for c in family.children
    ]


@pytest.mark.parametrize("fmt", ["txt", "text"])
def test_cat_tasks_format_text(shared_node: NodeProcess, family: Family, fmt: str) -> None:
    response = cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, format=fmt, h="ti")
    assert response.headers["content-type"].startswith("text/plain")
    assert sorted(response.text.split()) == family.children


def test_cat_tasks_time_units(shared_node: NodeProcess, family: Family) -> None:
    # Both running time columns come from the same snapshot, so they agree exactly.
    text = cat(
        shared_node, "/_cat/tasks", parent_task_id=family.parent,
        h="running_time_ns,running_time", time="nanos",
    ).text
    for nanos, same in rows(text):
        assert nanos == same
    text = cat(
        shared_node, "/_cat/tasks", parent_task_id=family.parent,
        h="running_time_ns,running_time", time="micros",
    ).text
    for nanos, micros in rows(text):
        assert int(micros) == int(nanos) // 1000
    for unit in ("ms", "s", "m", "h", "d"):
        text = cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, h="running_time", time=unit).text
        values = text.split()
        assert len(values) == 2 and all(v.isdigit() for v in values), (unit, values)
    assert cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, h="time", time="d").text == "0\n0\n"


def test_cat_tasks_node_filter(shared_node: NodeProcess, family: Family) -> None:
    assert cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, nodes="ghost").text == ""
    local = cat(shared_node, "/_cat/tasks", parent_task_id=family.parent, nodes="_local", h="ti").text
    assert sorted(local.split()) == family.children
    assert cat(shared_node, "/_cat/tasks", actions="no:such", format="json").json() == []


def test_cat_tasks_shows_the_listing_request_itself(shared_node: NodeProcess) -> None:
    opaque = f"cat-{uuid.uuid4().hex}"
    response = shared_node.get(
        "/_cat/tasks", params={"h": "ac,ti,pti,x", "format": "json"}, headers={"X-Opaque-Id": opaque}
    )
    ours = [r for r in response.json() if r["x"] == opaque]
    assert [r["ac"] for r in ours] == ["cluster:monitor/tasks/lists", "cluster:monitor/tasks/lists[n]"]
    assert ours[1]["pti"] == ours[0]["ti"]
    assert response.headers["X-Opaque-Id"] == opaque


def test_cat_tasks_wait_for_completion(shared_node: NodeProcess) -> None:
    response = shared_node.post(
        "/_actions/test:sleep", params={"wait_for_completion": "false"},
        json={"children_per_node": 1, "duration": "300ms"},
    )
    parent = response.json()["task"]
    shared_node.wait_until(
        lambda: cat(shared_node, "/_cat/tasks", parent_task_id=parent, h="ti").text != ""
    )
    text = cat(shared_node, "/_cat/tasks", parent_task_id=parent, h="ti,running_time_ns",
               wait_for_completion="true", timeout="30s").text
    [[_, nanos]] = rows(text)
    assert int(nanos) >= 250_000_000
    assert cat(shared_node, "/_cat/tasks", parent_task_id=parent).text == ""


# ------------------------------------------------------------------------------------ _cat/nodes


def test_cat_nodes_default_columns(shared_node: NodeProcess) -> None:
    response = cat(shared_node, "/_cat/nodes", v="true")
    assert response.headers["content-type"].startswith("text/plain")
    header, row = response.text.splitlines()
    assert header.split() == DEFAULT_NODE_COLUMNS
    values = row.split()
    assert values[0] == address_of(shared_node)[0]
    assert values[-1] == "shared"
    assert values[-2] == "-"  # no elected master
    assert values[-3] == "t"  # the task role
    assert 0 <= int(values[1]) <= 100 and 0 <= int(values[2]) <= 100


def test_cat_nodes_json_with_chosen_columns(shared_node: NodeProcess) -> None:
    host, port = address_of(shared_node)
    body = cat(shared_node, "/_cat/nodes", format="json", h="id,name,ip,port,http_address,pid,master",
               full_id="true").json()
    assert len(body) == 1
    row = body[0]
    assert list(row) == ["id", "name", "ip", "port", "http_address", "pid", "master"]
    assert row["id"] == shared_node.node_id
    assert row["name"] == "shared"
    assert row["ip"] == host
    assert row["port"] == str(port)
    assert row["http_address"] == f"{host}:{port}"
    assert row["pid"] == str(shared_node.pid)
    assert row["master"] == "-"
    short = cat(shared_node, "/_cat/nodes", format="json", h="id").json()
    assert short == [{"id": row["id"][:4]}]


def test_cat_nodes_yaml_and_uptime(shared_node: NodeProcess) -> None:
    response = cat(shared_node, "/_cat/nodes", format="yaml", h="name,uptime")
    assert response.headers["content-type"].startswith("application/yaml")
    [row] = yaml.safe_load(response.text)
    assert row["name"] == "shared"
    assert TIME_VALUE.fullmatch(row["uptime"]), row["uptime"]
    seconds = cat(shared_node, "/_cat/nodes", h="uptime", time="ms").text.strip()
    assert seconds.isdigit() and int(seconds) > 0


def test_cat_nodes_help(shared_node: NodeProcess) -> None:
    text = cat(shared_node, "/_cat/nodes", help="true").text
    names = [line.split("|")[0].strip() for line in text.splitlines()]
    assert names[:3] == ["id", "pid", "ip"]
    assert set(DEFAULT_NODE_COLUMNS) <= set(names)
    assert "uptime" in names and "http_address" in names
