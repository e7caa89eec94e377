"""The core task model: ids, tasks, the manager, cancellation. No web, network or database code."""

from taskwarden.tasks.cancellation import CancellationService, RemoteBans
from taskwarden.tasks.clock import SYSTEM_CLOCK, Clock, ManualClock, SystemClock
from taskwarden.tasks.filters import TaskFilter, simple_match
from taskwarden.tasks.ids import EMPTY_TASK_ID, TaskId
from taskwarden.tasks.info import TaskInfo, format_iso_millis
from taskwarden.tasks.manager import TaskManager
from taskwarden.tasks.task import (
    BY_USER_REQUEST,
    NODE_SHUTTING_DOWN,
    CancellableTask,
    CancelReason,
    CancelSource,
    Task,
)

__all__ = [
    "BY_USER_REQUEST",
    "EMPTY_TASK_ID",
    "NODE_SHUTTING_DOWN",
    "SYSTEM_CLOCK",
    "CancelReason",
    "CancelSource",
    "CancellableTask",
    "CancellationService",
    "Clock",
    "ManualClock",
    "RemoteBans",
    "SystemClock",
    "Task",
    "TaskFilter",
    "TaskId",
    "TaskInfo",
    "TaskManager",
    "format_iso_millis",
    "simple_match",
]
