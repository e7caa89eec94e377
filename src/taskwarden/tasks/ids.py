"""TaskId: ``<node_id>:<seq>``, parsed with Elasticsearch's rules."""

from __future__ import annotations

from typing import NamedTuple

from taskwarden.errors import IllegalArgumentError, NumberFormatError

_LONG_MIN = -(2**63)
_LONG_MAX = 2**63 - 1


class TaskId(NamedTuple):
    """A task's identity across the cluster; ``TaskId.EMPTY`` stands for "unset"."""

    node_id: str
    id: int

    @property
    def is_set(self) -> bool:
        return self.id != -1

    def __str__(self) -> str:
        return f"{self.node_id}:{self.id}" if self.is_set else "unset"

    @classmethod
    def parse(cls, raw: str | None) -> TaskId:
        """Parse ``node:id``; empty or ``unset`` is EMPTY, anything else malformed is a 400."""
        if raw is None or raw == "" or raw == "unset":
            return EMPTY_TASK_ID
        node, sep, number = raw.partition(":")
        if not sep:
            raise IllegalArgumentError(f"malformed task id {raw}")
        try:
            if not number or number.strip() != number or "_" in number:
                raise ValueError(number)
            value = int(number, 10)
            if not _LONG_MIN <= value <= _LONG_MAX:
                raise ValueError(number)
        except ValueError:
            raise IllegalArgumentError(
                f"malformed task id {raw}",
                caused_by=NumberFormatError(f'For input string: "{number}"'),
            ) from None
        if value == -1:
            return EMPTY_TASK_ID
        return cls(node, value)


EMPTY_TASK_ID = TaskId("", -1)
