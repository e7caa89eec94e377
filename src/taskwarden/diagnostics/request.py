"""``GET /_nodes/hot_threads`` parameters after parsing, and how one node's report is framed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["HOT_THREADS_TYPES", "HotThreadsRequest", "node_block"]

HOT_THREADS_TYPES = ("cpu", "wait", "block", "mem")
HOT_THREADS_SORTS = ("total", "cpu")


@dataclass(frozen=True)
class HotThreadsRequest:
    """What to sample: how many threads, for how long, how many stack snapshots, which metric."""

    threads: int = 3
    interval_nanos: int = 500_000_000
    snapshots: int = 10
    type: str = "cpu"
    sort: str = "total"
    ignore_idle_threads: bool = True
    timeout_nanos: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The internal wire form sent to the other nodes."""
        return {
            "threads": self.threads,
            "interval_nanos": self.interval_nanos,
            "snapshots": self.snapshots,
            "type": self.type,
            "sort": self.sort,
            "ignore_idle_threads": self.ignore_idle_threads,
            "timeout_nanos": self.timeout_nanos,
        }

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> HotThreadsRequest:
        timeout = body.get("timeout_nanos")
        request = cls(
            threads=int(body["threads"]),
            interval_nanos=int(body["interval_nanos"]),
            snapshots=int(body["snapshots"]),
            type=str(body["type"]),
            sort=str(body["sort"]),
            ignore_idle_threads=bool(body["ignore_idle_threads"]),
            timeout_nanos=None if timeout is None else int(timeout),
        )
        if request.type not in HOT_THREADS_TYPES or request.sort not in HOT_THREADS_SORTS:
            raise ValueError("unsupported type or sort")
        return request

    @property
    def sampling_nanos(self) -> int:
        """About how long sampling takes: the interval, then the snapshots 10 ms apart."""
        return self.interval_nanos + self.snapshots * 10_000_000


def node_block(header: str, report: str) -> str:
    """``::: {node...}`` then the report with every line indented by 3 spaces, then a blank line."""
    body = "".join(f"   {line}\n" for line in report.rstrip("\n").split("\n"))
    return f"::: {header}\n{body}\n"
