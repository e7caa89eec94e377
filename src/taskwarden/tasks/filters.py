"""Which tasks a list or cancel request selects: action wildcards, parent, id."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from taskwarden.tasks.ids import TaskId
from taskwarden.tasks.task import Task

__all__ = ["TaskFilter", "simple_match"]

_PATTERN_CACHE: dict[str, re.Pattern[str]] = {}


def simple_match(pattern: str, value: str) -> bool:
    """Elasticsearch's simple wildcard: ``*`` matches any run of characters, case-sensitive."""
    if "*" not in pattern:
        return pattern == value
    if pattern == "*":
        return True
    compiled = _PATTERN_CACHE.get(pattern)
    if compiled is None:
        compiled = re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.S)
        if len(_PATTERN_CACHE) < 1024:
            _PATTERN_CACHE[pattern] = compiled
    return compiled.fullmatch(value) is not None


@dataclass(frozen=True)
class TaskFilter:
    """A task matches when every set criterion holds (ES TasksRequest.match)."""

    actions: Sequence[str] = field(default_factory=tuple)
    parent_id: TaskId | None = None
    task_id: TaskId | None = None
    cancellable_only: bool = False
    exclude_action_prefix: str | None = None

    def matches(self, task: Task) -> bool:
        if self.task_id is not None and task.id != self.task_id:
            return False
        if self.parent_id is not None and task.parent_id != self.parent_id:
            return False
        if self.cancellable_only and not task.cancellable:
            return False
        if self.exclude_action_prefix and task.action.startswith(self.exclude_action_prefix):
            return False
        return not self.actions or any(simple_match(p, task.action) for p in self.actions)
