"""``test:sleep`` tasks a test starts through a node's REST API, all cancelled at the end."""

from __future__ import annotations

import time
from typing import Any

from nodeproc import NodeProcess


class Sleeps:
    """Starts ``test:sleep`` tasks through the node's REST API and cancels them all at teardown."""

    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        self.started: list[str] = []

    def __enter__(self) -> Sleeps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel_all()

    def start(self, **params: Any) -> str:
        task_id = self.node.start_sleep(**params)
        self.started.append(task_id)
        return task_id

    def children_of(self, parent: str) -> list[dict[str, Any]]:
        body = self.node.get(
            "/_tasks", params={"parent_task_id": parent, "group_by": "none", "detailed": "true"}
        ).json()
        tasks: list[dict[str, Any]] = body["tasks"]
        return tasks

    def wait_for_children(self, parent: str, count: int) -> list[dict[str, Any]]:
        self.node.wait_until(lambda: len(self.children_of(parent)) >= count, message=f"children of {parent}")
        return self.children_of(parent)

    def wait_completed(self, task_id: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.node.get(f"/_tasks/{task_id}")
            if response.status_code == 200 and response.json()["completed"]:
                body: dict[str, Any] = response.json()
                return body
            time.sleep(0.02)
        raise AssertionError(f"task {task_id} did not complete within {timeout}s")

    def cancel_all(self) -> None:
        for task_id in self.started:
            self.node.post(f"/_tasks/{task_id}/_cancel", params={"wait_for_completion": "true"})
        self.node.wait_until(
            lambda: not {t["node"] + ":" + str(t["id"]) for t in self.node.running()} & set(self.started),
            message="started tasks still running after cancel",
        )
