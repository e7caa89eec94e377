"""Several real node processes sharing one store, for the cluster tests."""

from __future__ import annotations

from pathlib import Path

from nodeproc import NodeProcess

HEARTBEAT_TIMEOUT = "2s"


class Cluster:
    """Nodes n1..n3 on one store; ``restart`` brings a node back with the same data folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = f"sqlite:///{root / 'cluster.db'}"
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
        import sqlite3
        from contextlib import closing

        path = self.store.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path)) as db:
            row = db.execute("SELECT value FROM cluster_metadata WHERE key = 'secret'").fetchone()
        return str(row[0])
