"""Several real node processes sharing one store, for the cluster tests."""

from __future__ import annotations

from pathlib import Path

from nodeproc import NodeProcess

# The default: shorter ones let a busy test machine declare live nodes gone.
HEARTBEAT_TIMEOUT = "5s"


class Cluster:
    """Nodes n1..n3 on one store; ``restart`` brings a node back with the same data folder."""

    def __init__(self, root: Path, store: str | None = None) -> None:
        self.root = root
        self.store = store or f"sqlite:///{root / 'cluster.db'}"
        self.nodes: list[NodeProcess] = []

    def new_node(self, index: int) -> NodeProcess:
        return NodeProcess(
            self.root / f"n{index}", node_name=f"n{index}",
            extra_args=["--store", self.store, "--heartbeat-timeout", HEARTBEAT_TIMEOUT],
        )

    def start(self, count: int = 3) -> None:
        for index in range(1, count + 1):
            node = self.new_node(index)
            node.start()
            self.nodes.append(node)
        first = self.nodes[0]
        first.wait_until(lambda: len(first.get("/_nodes").json()["nodes"]) == count,
                         message="nodes did not see each other")

    def restart(self, index: int) -> NodeProcess:
        self.nodes[index - 1].stop()
        node = self.new_node(index)
        node.start()
        self.nodes[index - 1] = node
        return node

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def secret(self) -> str:
        """The cluster secret, read from the shared store as a node would."""
        query = "SELECT value FROM cluster_metadata WHERE key = 'secret'"
        if self.store.startswith("postgresql://"):
            import asyncio

            import asyncpg

            async def read() -> str:
                conn = await asyncpg.connect(self.store)
                try:
                    return str(await conn.fetchval(query))
                finally:
                    await conn.close()

            return asyncio.run(read())
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(self.store.removeprefix("sqlite:///"))) as db:
            return str(db.execute(query).fetchone()[0])
