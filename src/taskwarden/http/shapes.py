"""Response shapes of the ``_tasks`` APIs: the three ``group_by`` forms and the get body."""

from __future__ import annotations

from typing import Any

import orjson

from taskwarden.cluster.requests import ClusterTasksResult, GetResult
from taskwarden.tasks import TaskInfo

__all__ = ["GROUP_BY_CHOICES", "get_body", "tasks_body"]

GROUP_BY_CHOICES = ("nodes", "parents", "none")


def tasks_body(result: ClusterTasksResult, group_by: str, *, human: bool) -> dict[str, Any]:
    """List and cancel responses: failures first, then the grouped tasks."""
    body: dict[str, Any] = {}
    if result.task_failures:
        body["task_failures"] = [f.to_dict() for f in result.task_failures]
    if result.node_failures:
        body["node_failures"] = [f.to_dict() for f in result.node_failures]
    if group_by == "none":
        body["tasks"] = [t.to_dict(human=human) for t in result.tasks]
    elif group_by == "parents":
        body["tasks"] = _by_parents(result.tasks, human)
    else:
        body["nodes"] = _by_nodes(result, human)
    return body


def _by_nodes(result: ClusterTasksResult, human: bool) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    for node_id, rendered in result.rendered.items():
        node = result.nodes.get(node_id)
        header: dict[str, Any] = node.list_header() if node is not None else {}
        header["tasks"] = orjson.Fragment(rendered)
        nodes[node_id] = header
    for info in result.tasks:
        entry = nodes.get(info.node)
        if entry is None:
            node = result.nodes.get(info.node)
            entry = node.list_header() if node is not None else {}
            entry["tasks"] = {}
            nodes[info.node] = entry
        entry["tasks"][info.task_id] = info.to_dict(human=human)
    return nodes


def _by_parents(tasks: list[TaskInfo], human: bool) -> dict[str, Any]:
    """Top level: tasks whose parent is not in the result; children nested recursively."""
    present = {t.task_id for t in tasks}
    children: dict[str, list[TaskInfo]] = {}
    roots: list[TaskInfo] = []
    for info in tasks:
        if info.parent_task_id is not None and info.parent_task_id in present:
            children.setdefault(info.parent_task_id, []).append(info)
        else:
            roots.append(info)

    def render(info: TaskInfo, seen: set[str]) -> dict[str, Any]:
        out = info.to_dict(human=human)
        kids = children.get(info.task_id)
        if kids and info.task_id not in seen:
            seen.add(info.task_id)
            out["children"] = [render(k, seen) for k in kids]
        return out

    return {info.task_id: render(info, set()) for info in roots}


def get_body(result: GetResult, *, human: bool) -> dict[str, Any]:
    """``{"completed", "task", "error"?, "response"?}`` in Elasticsearch's key order."""
    body: dict[str, Any] = {
        "completed": result.completed,
        "task": result.task.to_dict(human=human),
    }
    if result.error is not None:
        body["error"] = result.error
    if result.has_response:
        body["response"] = result.response
    return body
