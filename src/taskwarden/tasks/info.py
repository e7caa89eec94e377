"""TaskInfo: the immutable snapshot every API response is built from, in ES field order."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from taskwarden.timevalue import format_time_value

__all__ = ["TaskInfo", "format_iso_millis"]


def format_iso_millis(epoch_millis: int) -> str:
    """``2023-11-14T22:13:20.123Z`` as Elasticsearch prints ``start_time``."""
    moment = _dt.datetime.fromtimestamp(epoch_millis / 1000, tz=_dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_millis % 1000:03d}Z"


@dataclass(slots=True)
class TaskInfo:
    """One task as the API shows it; treat as immutable (not frozen: listing builds thousands)."""

    node: str
    id: int
    type: str
    action: str
    status: dict[str, Any] | None
    description: str | None
    start_time_in_millis: int
    running_time_in_nanos: int
    cancellable: bool
    cancelled: bool | None
    parent_task_id: str | None
    headers: dict[str, str]
    resource_stats: dict[str, Any] | None = None

    @property
    def task_id(self) -> str:
        return f"{self.node}:{self.id}"

    def to_dict(self, *, human: bool = False) -> dict[str, Any]:
        """The JSON object, fields in Elasticsearch's order; optional ones only when set."""
        out: dict[str, Any] = {
            "node": self.node,
            "id": self.id,
            "type": self.type,
            "action": self.action,
        }
        if self.status is not None:
            out["status"] = self.status
        if self.description is not None:
            out["description"] = self.description
        if human:
            out["start_time"] = format_iso_millis(self.start_time_in_millis)
        out["start_time_in_millis"] = self.start_time_in_millis
        if human:
            out["running_time"] = format_time_value(self.running_time_in_nanos)
        out["running_time_in_nanos"] = self.running_time_in_nanos
        out["cancellable"] = self.cancellable
        if self.cancellable and self.cancelled is not None:
            out["cancelled"] = self.cancelled
        if self.parent_task_id is not None:
            out["parent_task_id"] = self.parent_task_id
        out["headers"] = self.headers
        if self.resource_stats is not None:
            out["resource_stats"] = self.resource_stats
        return out

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> TaskInfo:
        """Parse a TaskInfo JSON object (remote nodes, stored results); unknown keys ignored."""
        try:
            cancellable = bool(body["cancellable"])
            cancelled = body.get("cancelled")
            return cls(
                node=str(body["node"]),
                id=int(body["id"]),
                type=str(body["type"]),
                action=str(body["action"]),
                status=body.get("status"),
                description=body.get("description"),
                start_time_in_millis=int(body["start_time_in_millis"]),
                running_time_in_nanos=int(body["running_time_in_nanos"]),
                cancellable=cancellable,
                cancelled=bool(cancelled) if cancelled is not None and cancellable else None,
                parent_task_id=body.get("parent_task_id"),
                headers=dict(body.get("headers") or {}),
                resource_stats=body.get("resource_stats"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a task info object: {exc}") from exc
