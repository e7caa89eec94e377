"""Node: the composition root. Builds manager, runtime, store, cluster and HTTP app; starts and stops."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskwarden._version import __version__
from taskwarden.cluster.children import RemoteChildren
from taskwarden.cluster.local import LocalNode
from taskwarden.cluster.membership import Heartbeat, Membership
from taskwarden.cluster.nodes import NodeInfo
from taskwarden.cluster.remote import ClusterBans, ClusterLauncher
from taskwarden.cluster.retention import (
    DEFAULT_CLEANUP_INTERVAL_S,
    DEFAULT_RETENTION_S,
    ResultRetention,
)
from taskwarden.cluster.service import ClusterService
from taskwarden.cluster.transport import NodeTransport
from taskwarden.errors import TaskwardenError
from taskwarden.http.app import DEFAULT_MAX_CONCURRENT_REQUESTS, NodeApp, build_app
from taskwarden.metrics import NodeMetrics
from taskwarden.runtime.builtin.test_sleep import register_test_actions
from taskwarden.runtime.executors.processes import ProcessExecutor
from taskwarden.runtime.executors.threads import ThreadExecutor
from taskwarden.runtime.registry import DEFAULT_REGISTRY, load_app
from taskwarden.runtime.runner import (
    DEFAULT_MAX_CHILDREN_PER_TASK,
    DEFAULT_MAX_TASKS,
    ActionRunner,
)
from taskwarden.security import SecurityService
from taskwarden.store import ClusterStore
from taskwarden.tasks import (
    NODE_SHUTTING_DOWN,
    SYSTEM_CLOCK,
    CancellationService,
    CancelReason,
    CancelSource,
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
    heartbeat_interval_seconds: float = 1.0
    heartbeat_timeout_seconds: float = 5.0
    # Stored outcomes older than this are deleted (negative: kept forever), checked this often.
    results_retention_seconds: float = DEFAULT_RETENTION_S
    results_cleanup_interval_seconds: float = DEFAULT_CLEANUP_INTERVAL_S
    max_tasks: int = DEFAULT_MAX_TASKS
    max_children_per_task: int = DEFAULT_MAX_CHILDREN_PER_TASK
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    transport_timeout_seconds: float = 30.0
    # Every REST request must carry a user's password or an API key (see SECURITY.md).
    security: bool = False
    # The bootstrap ``admin`` user's password on a cluster without credentials (else generated).
    admin_password: str | None = None
    # HTTPS: this node's certificate and key (PEM); the CA other nodes' certificates are checked
    # against (default: the system's trusted CAs).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None

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


def outcome_unknown_error(
    name: str, node_id: str, what_happened: str, detail: str = ""
) -> dict[str, str]:
    """The stored error of a background task whose node went away before it finished."""
    return {
        "type": "node_closed_exception",
        "reason": (
            f"node [{name}][{node_id}] {what_happened} before the task finished{detail}; "
            "the task's outcome is unknown"
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
            max_workers=settings.process_workers, default_grace=settings.grace_seconds,
            preload=settings.apps,
        )
        self.runner = ActionRunner(
            self.manager, registry, threads=self.threads, processes=self.processes
        )
        self.runner.max_tasks = settings.max_tasks
        self.runner.max_children_per_task = settings.max_children_per_task
        self.metrics = NodeMetrics(self.manager)
        self.runner.observer = self.metrics
        self.store: ClusterStore | None = None
        self.cluster: ClusterService | None = None
        self.transport: NodeTransport | None = None
        self.remote_children: RemoteChildren | None = None
        self.heartbeat: Heartbeat | None = None
        self.retention: ResultRetention | None = None
        self.security: SecurityService | None = None
        # Set by start() when it created the bootstrap admin's password, to be shown once.
        self.generated_admin_password: str | None = None
        self._settling: set[asyncio.Task[None]] = set()
        self.app: NodeApp | None = None

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

    async def start(self, port: int | None = None) -> NodeApp:
        """Open the store, settle the previous life's unfinished tasks, build the app."""
        self.store = await ClusterStore.open(self.settings.store_url())
        failed = await self.store.fail_unfinished(self.node_id, outcome_unknown_error(
            self.name, self.node_id, "stopped", " (it crashed or was killed)"
        ))
        if failed:
            log.warning("marked %d unfinished background tasks of a previous run as failed",
                        len(failed))
        self.manager.number_after(await self.store.last_task_seq(self.node_id))
        uuid_ = await self.store.cluster_uuid()
        secret = await self.store.cluster_secret()
        membership = Membership(
            self.local_info(port if port is not None else self.settings.port),
            stale_after_s=self.settings.heartbeat_timeout_seconds,
        )
        self.security = SecurityService(
            self.store.credentials, enabled=self.settings.security, clock=self.manager.clock
        )
        if self.settings.security:
            self.generated_admin_password = await self.security.bootstrap(
                self.settings.admin_password
            )
        self.transport = NodeTransport(
            secret, timeout_s=self.settings.transport_timeout_seconds,
            tls_ca=self.settings.tls_ca if self.settings.tls_cert is not None else None,
            tls=self.settings.tls_cert is not None,
        )
        self.cancellation.remote = ClusterBans(membership, self.transport)
        self.remote_children = RemoteChildren(self.transport)
        self.runner.launcher = ClusterLauncher(self.runner, membership, self.remote_children)
        self.heartbeat = Heartbeat(
            membership, self.store, interval_s=self.settings.heartbeat_interval_seconds,
            clock=self.manager.clock, on_gone=self._on_nodes_gone,
            on_restarted=self._on_nodes_restarted,
        )
        local = LocalNode(self.manager, self.cancellation, self.store)
        self.cluster = ClusterService(
            self.manager,
            self.cancellation,
            local,
            membership,
            self.runner,
            self.store,
            self.transport,
            cluster_name=self.settings.cluster_name,
            cluster_uuid=uuid_,
            secret=secret,
        )
        self.cluster.metrics = self.metrics
        self.store.observer = self.metrics.store_operation
        self.retention = ResultRetention(
            self.store, self.manager.clock,
            retention_s=self.settings.results_retention_seconds,
            interval_s=self.settings.results_cleanup_interval_seconds,
        )
        self.app = build_app(
            self.cluster, max_requests=self.settings.max_concurrent_requests,
            security=self.security,
        )
        return self.app

    async def join(self, port: int) -> None:
        """Once listening: record the port actually bound (``--port 0``) and join the cluster."""
        if self.cluster is not None:
            self.cluster.membership.replace_local(self.local_info(port))
        if self.heartbeat is not None:
            try:
                await self.heartbeat.beat()
            except TaskwardenError as exc:
                log.warning("could not join the cluster yet (%s); retrying every heartbeat", exc)
            self.heartbeat.start()
        if self.retention is not None:
            self.retention.start()

    def _on_nodes_gone(self, gone: list[NodeInfo]) -> None:
        for node in gone:
            log.warning("node [%s][%s] left the cluster (no heartbeat for %.0fs)", node.name,
                        node.node_id, self.settings.heartbeat_timeout_seconds)
            if self.remote_children is not None:
                self.remote_children.node_gone(node.node_id, "left the cluster")
            self._settle_later(self._settle_gone(node))

    def _on_nodes_restarted(self, restarted: list[NodeInfo]) -> None:
        """A node came back as a new life before it was missed: what its previous life left here
        (bans, children nobody will collect) is settled as if it had left."""
        for node in restarted:
            log.warning("node [%s][%s] restarted", node.name, node.node_id)
            self._drop_bans_of(node.node_id)
            reason = CancelReason(
                f"parent node [{node.node_id}] restarted", CancelSource.NODE_LEFT
            )
            self._settle_later(
                self._cancel_orphans(node.node_id, reason, before_millis=node.started_millis)
            )

    def _settle_later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, kept referenced until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    def _drop_bans_of(self, node_id: str) -> None:
        """Bans set by another node's tasks: they end with that node's life, as ES's do with
        the connection they came over (a new life may reuse the task ids)."""
        for parent_id in list(self.manager.bans()):
            if parent_id.node_id == node_id:
                self.cancellation.remove_ban(parent_id)

    async def _cancel_orphans(
        self, node_id: str, reason: CancelReason, *, before_millis: int | None = None
    ) -> None:
        """Cancel the children here of ``node_id``'s tasks (those started before a restart)."""
        for task in list(self.manager):
            if task.parent_id.node_id != node_id or not task.cancellable:
                continue
            if before_millis is None or task.start_millis < before_millis:
                await self.cancellation.cancel(task, reason)

    async def _settle_gone(self, node: NodeInfo) -> None:
        """Drop the bans a departed node's tasks set here, cancel the children its tasks started
        here (nobody will collect them, even if the node only hangs), answer its unfinished
        background tasks."""
        self._drop_bans_of(node.node_id)
        orphaned = CancelReason(
            f"parent node [{node.node_id}] left the cluster", CancelSource.NODE_LEFT
        )
        await self._cancel_orphans(node.node_id, orphaned)
        assert self.store is not None
        try:
            failed = await self.store.fail_unfinished(node.node_id, outcome_unknown_error(
                node.name, node.node_id, "left the cluster"
            ))
        except TaskwardenError as exc:
            log.warning("could not settle the tasks of departed node [%s]: %s", node.node_id, exc)
            return
        if failed:
            log.warning("marked %d unfinished background tasks of node [%s] as failed",
                        len(failed), node.node_id)

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
        if self.retention is not None:
            await self.retention.stop()
        if self.heartbeat is not None:
            await self.heartbeat.stop(leave=True)
        if self.remote_children is not None:
            await self.remote_children.close()
        if self.transport is not None:
            await self.transport.close()
        await self.processes.shutdown()
        self.threads.shutdown()
        if self.store is not None:
            await self.store.close()
            self.store = None

