"""Node: the composition root. Builds manager, runtime, store, cluster and HTTP app; starts and stops."""

from __future__ import annotations

import base64
import logging
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette

from taskwarden._version import __version__
from taskwarden.cluster.local import LocalNode
from taskwarden.cluster.membership import Membership
from taskwarden.cluster.nodes import NodeInfo
from taskwarden.cluster.service import ClusterService
from taskwarden.http.app import build_app
from taskwarden.runtime.builtin.test_sleep import register_test_actions
from taskwarden.runtime.executors.processes import ProcessExecutor
from taskwarden.runtime.executors.threads import ThreadExecutor
from taskwarden.runtime.registry import DEFAULT_REGISTRY, load_app
from taskwarden.runtime.runner import ActionRunner
from taskwarden.store import ClusterStore
from taskwarden.tasks import (
    NODE_SHUTTING_DOWN,
    SYSTEM_CLOCK,
    CancellationService,
    Clock,
    TaskManager,
)

__all__ = ["Node", "NodeSettings", "load_node_id"]

log = logging.getLogger("taskwarden.node")


@dataclass
class NodeSettings:
    """Everything ``taskwarden serve`` can set."""

    host: str = "127.0.0.1"
    port: int = 9200
    data_dir: Path = field(default_factory=lambda: Path("data"))
    node_name: str | None = None
    cluster_name: str = "taskwarden"
    store: str | None = None
    apps: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    test_actions: bool = True
    grace_seconds: float = 10.0
    shutdown_timeout_seconds: float = 30.0
    thread_workers: int = 64
    process_workers: int = 32

    def store_url(self) -> str:
        if self.store:
            return self.store
        return f"sqlite:///{(self.data_dir / 'taskwarden.db').resolve()}"


def load_node_id(data_dir: Path) -> str:
    """The node id: created once (22-char URL-safe base64 of a UUID) and kept in the data folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "node_id"
    if path.exists():
        node_id = path.read_text().strip()
        if node_id:
            return node_id
    node_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(node_id + "\n")
    tmp.replace(path)
    return node_id


def crash_error(node_id: str, name: str) -> dict[str, str]:
    return {
        "type": "node_closed_exception",
        "reason": (
            f"node [{name}][{node_id}] stopped before the task finished (it crashed or was "
            "killed); the task's outcome is unknown"
        ),
    }


class Node:
    """One taskwarden node: call :meth:`start`, serve :attr:`app`, then :meth:`stop`."""

    def __init__(self, settings: NodeSettings, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.node_id = load_node_id(settings.data_dir)
        self.name = settings.node_name or socket.gethostname()
        self.manager = TaskManager(self.node_id, clock)
        self.cancellation = CancellationService(self.manager)
        registry = DEFAULT_REGISTRY
        for module in settings.apps:
            load_app(module)
        registry = registry.copy()
        if settings.test_actions:
            register_test_actions(registry)
        self.threads = ThreadExecutor(max_workers=settings.thread_workers)
        self.processes = ProcessExecutor(
            max_workers=settings.process_workers, default_grace=settings.grace_seconds
        )
        self.runner = ActionRunner(
            self.manager, registry, threads=self.threads, processes=self.processes
        )
        self.store: ClusterStore | None = None
        self.cluster: ClusterService | None = None
        self.app: Starlette | None = None

    def local_info(self, port: int) -> NodeInfo:
        return NodeInfo(
            node_id=self.node_id,
            name=self.name,
            host=self.settings.host,
            port=port,
            version=__version__,
            attributes=dict(self.settings.attributes),
            started_millis=self.manager.clock.epoch_millis(),
        )

    async def start(self, port: int | None = None) -> Starlette:
        """Open the store, settle the previous life's unfinished tasks, build the app."""
        self.store = await ClusterStore.open(self.settings.store_url())
        failed = await self.store.fail_unfinished(self.node_id, crash_error(self.node_id, self.name))
        if failed:
            log.warning("marked %d unfinished background tasks of a previous run as failed",
                        len(failed))
        self.manager.number_after(await self.store.last_task_seq(self.node_id))
        uuid_ = await self.store.cluster_uuid()
        membership = Membership(self.local_info(port if port is not None else self.settings.port))
        local = LocalNode(self.manager, self.cancellation, self.store)
        self.cluster = ClusterService(
            self.manager,
            self.cancellation,
            local,
            membership,
            self.runner,
            self.store,
            cluster_name=self.settings.cluster_name,
            cluster_uuid=uuid_,
        )
        self.app = build_app(self.cluster)
        return self.app

    def set_port(self, port: int) -> None:
        """Record the port actually bound (``--port 0``)."""
        if self.cluster is not None:
            self.cluster.membership.replace_local(self.local_info(port))

    async def cancel_all(self) -> None:
        """Cancel every running task with reason ``node shutting down`` and wait for them."""
        for task in list(self.manager):
            if task.cancellable:
                await self.cancellation.cancel(task, NODE_SHUTTING_DOWN)
        if not await self.runner.wait_all(self.settings.shutdown_timeout_seconds):
            log.warning("some tasks were still running %.0fs after shutdown began",
                        self.settings.shutdown_timeout_seconds)

    async def stop(self) -> None:
        """Stop work, store outcomes, close executors and the store."""
        await self.cancel_all()
        await self.processes.shutdown()
        self.threads.shutdown()
        if self.store is not None:
            await self.store.close()
            self.store = None

