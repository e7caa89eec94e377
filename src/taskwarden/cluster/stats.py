"""What ``_cat/nodes`` shows of a node's machine and process: uptime, CPU, memory, load."""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

from taskwarden.cluster.nodes import NodeInfo

__all__ = ["node_stats"]


def node_stats(node: NodeInfo) -> dict[str, Any]:
    """This process's figures; each node reports its own (the others ask it over HTTP)."""
    load = os.getloadavg()
    return {
        "uptime_millis": int(time.time() * 1000) - node.started_millis,
        "pid": os.getpid(),
        "cpu_percent": psutil.cpu_percent(interval=None),
        "ram_percent": psutil.virtual_memory().percent,
        "load_1m": load[0],
        "load_5m": load[1],
        "load_15m": load[2],
    }
