"""Serve a node over HTTP with uvicorn; SIGTERM/SIGINT stop it gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
from collections.abc import Generator

import uvicorn

from taskwarden.node import Node, NodeSettings

__all__ = ["run_node", "serve"]

log = logging.getLogger("taskwarden.server")


class NodeServer(uvicorn.Server):
    """uvicorn, but a stop signal first cancels the node's tasks so waiting callers get answers."""

    def __init__(self, config: uvicorn.Config, node: Node) -> None:
        super().__init__(config)
        self.node = node
        self.listening = asyncio.Event()
        self._stopping: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: int) -> None:
        if self._stopping is not None:
            log.warning("second stop signal: exiting without waiting for tasks")
            self.force_exit = True
            self.should_exit = True
            return
        log.info("received %s: cancelling running tasks", signal.Signals(sig).name)
        self._stopping = asyncio.get_running_loop().create_task(self._graceful())

    async def _graceful(self) -> None:
        try:
            await self.node.cancel_all()
        finally:
            self.should_exit = True


async def serve(settings: NodeSettings) -> None:
    """Run one node until it is told to stop."""
    node = Node(settings)
    app = await node.start()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http="httptools",
        lifespan="off",
        access_log=False,
        # Addresses are not taken from X-Forwarded-* headers; skipping that layer saves time on
        # every request.
        proxy_headers=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
        # Longer than the node-to-node client keeps idle connections (30 s): the client, not
        # the server, closes them, so a pooled connection is never found dead on reuse.
        timeout_keep_alive=75,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )
    server = NodeServer(config, node)
    announce = asyncio.get_running_loop().create_task(_announce(server, node))
    try:
        await server.serve()
    finally:
        announce.cancel()
        await node.stop()
    log.info("node [%s][%s] stopped", node.name, node.node_id)


async def _announce(server: NodeServer, node: Node) -> None:
    """Once listening, record the bound port and say where the node is."""
    await server.listening.wait()
    if not server.started:
        return
    port = node.settings.port
    for listener in server.servers:
        for sock in listener.sockets:
            port = sock.getsockname()[1]
            break
    await node.join(port)
    # What exists now (modules, the app, pools) lives as long as the process: keep it out of
    # every later full collection, which then walks only the objects of running work.
    gc.collect()
    gc.freeze()
    scheme = "https" if node.settings.tls_cert is not None else "http"
    secured = ", security on" if node.settings.security else ""
    print(
        f"taskwarden node [{node.name}][{node.node_id}] started on "
        f"{scheme}://{node.settings.host}:{port} (cluster [{node.settings.cluster_name}], "
        f"store {node.settings.store_url()}{secured})",
        flush=True,
    )
    if node.generated_admin_password is not None:
        print(
            f"security: created user [admin] with password [{node.generated_admin_password}]; "
            "it is shown only this once (change it with PUT /_security/user/admin)",
            flush=True,
        )


def run_node(settings: NodeSettings) -> None:
    """Blocking entry point used by the CLI."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per node-to-node request would drown the log (and cost time on the hot path).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(serve(settings))
