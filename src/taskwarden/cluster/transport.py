"""HTTP between nodes: internal endpoints, authenticated with the cluster secret.

A node that cannot be reached, or does not answer in time, becomes a ``node_not_connected_exception``
that the coordinating node reports in ``node_failures``; it never hangs a request.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from taskwarden.cluster.nodes import NodeInfo
from taskwarden.cluster.requests import CancelRequest, GetResult, ListRequest, NodeTasksResult
from taskwarden.diagnostics.request import HotThreadsRequest
from taskwarden.errors import NodeNotConnectedError, TaskwardenError, error_from_dict
from taskwarden.tasks import CancelReason, Task, TaskId

__all__ = ["INTERNAL_PREFIX", "SECRET_HEADER", "NodeTransport", "ParentRef"]

INTERNAL_PREFIX = "/_internal"
SECRET_HEADER = "X-Taskwarden-Cluster-Secret"
DEFAULT_TIMEOUT_S = 30.0
# A wait on the other node may use the whole request timeout; the transport allows a bit more.
_WAIT_MARGIN_S = 5.0


class ParentRef:
    """The coordinating task a remote ``[n]`` task hangs under, with the caller's headers."""

    __slots__ = ("action", "cancellable", "headers", "task_id")

    def __init__(
        self, task_id: TaskId, action: str, headers: dict[str, str], cancellable: bool
    ) -> None:
        self.task_id = task_id
        self.action = action
        self.headers = headers
        self.cancellable = cancellable

    @classmethod
    def of(cls, task: Task) -> ParentRef:
        return cls(task.id, task.action, task.headers, task.cancellable)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": str(self.task_id),
            "action": self.action,
            "headers": self.headers,
            "cancellable": self.cancellable,
        }

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> ParentRef:
        return cls(
            TaskId.parse(str(body["task_id"])),
            str(body["action"]),
            {str(k): str(v) for k, v in (body.get("headers") or {}).items()},
            bool(body.get("cancellable", True)),
        )


class NodeTransport:
    """A pooled HTTP client that calls the internal endpoints of the other nodes."""

    def __init__(
        self, secret: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, tls: bool = False,
        tls_ca: Path | None = None,
    ) -> None:
        """``tls``: the other nodes serve HTTPS, their certificates checked against ``tls_ca``
        (default: the system's trusted CAs)."""
        self._timeout_s = timeout_s
        self._headers = {SECRET_HEADER: secret, "Content-Type": "application/json"}
        self._session: aiohttp.ClientSession | None = None
        self._scheme = "https" if tls else "http"
        self._ssl: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(tls_ca) if tls_ca else None) if tls else False
        )

    def _client(self) -> aiohttp.ClientSession:
        # aiohttp rather than httpx here: every child running on another node holds one request
        # open, and httpx's pool slows down quadratically with thousands of open connections.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(
                    limit=0, limit_per_host=0, keepalive_timeout=30, ssl=self._ssl
                ),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def list_tasks(
        self, node: NodeInfo, request: ListRequest, parent: ParentRef
    ) -> NodeTasksResult:
        return await self._node_tasks(node, "/tasks/list", request, parent)

    async def cancel_tasks(
        self, node: NodeInfo, request: CancelRequest, parent: ParentRef
    ) -> NodeTasksResult:
        return await self._node_tasks(node, "/tasks/cancel", request, parent)

    async def _node_tasks(
        self, node: NodeInfo, path: str, request: ListRequest | CancelRequest, parent: ParentRef
    ) -> NodeTasksResult:
        body = {"request": request.to_dict(), "parent": parent.to_dict()}
        status, content = await self._exchange(node, path, body, request.timeout_nanos,
                                               request.wait_for_completion)
        if status >= 400:
            _check_answer(node, status, content)
        try:
            return NodeTasksResult.from_wire(content)
        except (ValueError, KeyError, TypeError) as exc:
            raise NodeNotConnectedError(
                f"[{node.name}][{node.http_address}] answered a malformed task list: {exc}",
                metadata={"node_id": node.node_id},
            ) from None

    async def get_task(
        self, node: NodeInfo, task_id: TaskId, *, wait_for_completion: bool,
        timeout_nanos: int | None,
    ) -> GetResult:
        body = {
            "task_id": str(task_id),
            "wait_for_completion": wait_for_completion,
            "timeout_nanos": timeout_nanos,
        }
        answer = await self._call(node, "/tasks/get", body, timeout_nanos, wait_for_completion)
        return GetResult.from_body(answer)

    async def hot_threads(self, node: NodeInfo, request: HotThreadsRequest) -> str:
        """``node``'s hot threads report; the wait covers its sampling plus the request timeout."""
        timeout = request.sampling_nanos + (request.timeout_nanos or 30 * 10**9)
        answer = await self._call(node, "/nodes/hot_threads", request.to_dict(), timeout, True)
        return str(answer.get("report", ""))

    async def node_stats(self, node: NodeInfo) -> dict[str, Any]:
        """The figures ``node`` reports about its machine and process (``_cat/nodes``)."""
        return await self._call(node, "/nodes/stats", {}, None, False)

    async def _post(
        self, url: str, body: dict[str, Any], timeout: float | None
    ) -> tuple[int, bytes]:
        async with self._client().post(
            url, data=orjson.dumps(body),
            timeout=aiohttp.ClientTimeout(total=timeout, connect=min(5.0, self._timeout_s)),
        ) as response:
            return response.status, await response.read()

    async def ban(
        self, node: NodeInfo, parent_id: TaskId, reason: CancelReason, *, wait_for_completion: bool
    ) -> None:
        """Ban ``parent_id`` on ``node``: its children there are cancelled, new ones refused."""
        body = {
            "parent_task_id": str(parent_id),
            "ban": True,
            "reason": reason.message,
            "source": reason.source.value,
            "wait_for_completion": wait_for_completion,
        }
        await self._call(node, "/bans", body, -1 if wait_for_completion else None,
                         wait_for_completion)

    async def unban(self, node: NodeInfo, parent_id: TaskId) -> None:
        await self._call(node, "/bans", {"parent_task_id": str(parent_id), "ban": False}, None, False)

    async def run_children(
        self, node: NodeInfo, parent: ParentRef, children: list[tuple[str, orjson.Fragment]]
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Run ``children`` (action, encoded params) on ``node`` under ``parent``; yields their
        ends as they come.

        One streamed request carries a whole batch: each line of the answer is one child's
        ``{"i": index, "response": ...}`` or ``{"i": index, "error": ..., "status": ...}``.
        Closing the stream early cancels, on ``node``, every child that has not ended.
        """
        body = {
            "parent": parent.to_dict(),
            "children": [{"action": action, "params": params} for action, params in children],
        }
        url = f"{self._scheme}://{node.http_address}{INTERNAL_PREFIX}/actions/run"
        with _as_node_failure(node):
            async with self._client().post(
                url, data=orjson.dumps(body),
                timeout=aiohttp.ClientTimeout(total=None, connect=min(5.0, self._timeout_s)),
            ) as response:
                if response.status != 200:
                    _check_answer(node, response.status, await response.read())
                    return
                pending = bytearray()
                async for chunk in response.content.iter_any():
                    pending.extend(chunk)
                    end = pending.rfind(b"\n")
                    if end < 0:
                        continue
                    complete = bytes(pending[:end])
                    del pending[: end + 1]
                    yield [orjson.loads(line) for line in complete.split(b"\n")]

    async def _call(
        self, node: NodeInfo, path: str, body: dict[str, Any], timeout_nanos: int | None,
        waits: bool,
    ) -> dict[str, Any]:
        return _check_answer(node, *await self._exchange(node, path, body, timeout_nanos, waits))

    async def _exchange(
        self, node: NodeInfo, path: str, body: dict[str, Any], timeout_nanos: int | None,
        waits: bool,
    ) -> tuple[int, bytes]:
        # The flag also rides in the query string: it tells the endpoint whether a large answer
        # may be built with the garbage collector paused (never while the request waits).
        url = (
            f"{self._scheme}://{node.http_address}{INTERNAL_PREFIX}{path}"
            f"?wait_for_completion={'true' if waits else 'false'}"
        )
        timeout: float | None = self._timeout_s
        if waits:
            timeout = (
                None if timeout_nanos == -1
                else (timeout_nanos or 30 * 10**9) / 1e9 + _WAIT_MARGIN_S
            )
        with _as_node_failure(node):
            try:
                status, content = await self._post(url, body, timeout)
            except aiohttp.ServerDisconnectedError:
                # A pooled connection the other side had just closed: safe to send once more.
                status, content = await self._post(url, body, timeout)
        return status, content


@contextmanager
def _as_node_failure(node: NodeInfo) -> Iterator[None]:
    """A node that cannot be reached or does not answer in time: ``node_not_connected``."""
    try:
        yield
    except TimeoutError as exc:
        raise NodeNotConnectedError(
            f"[{node.name}][{node.http_address}] did not answer in time: {type(exc).__name__}",
            metadata={"node_id": node.node_id},
        ) from None
    except aiohttp.ClientError as exc:
        raise NodeNotConnectedError(
            f"[{node.name}][{node.http_address}] request failed: {type(exc).__name__}: {exc}",
            metadata={"node_id": node.node_id},
        ) from None
    except orjson.JSONDecodeError:
        raise NodeNotConnectedError(
            f"[{node.name}][{node.http_address}] answered a line that is not JSON",
            metadata={"node_id": node.node_id},
        ) from None


def _check_answer(node: NodeInfo, status: int, content: bytes) -> dict[str, Any]:
    """The answer's JSON object; an error answer raised as the error it carries."""
    try:
        answer = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise NodeNotConnectedError(
            f"[{node.name}][{node.http_address}] answered {status} with a body that is not JSON",
            metadata={"node_id": node.node_id},
        ) from None
    if status >= 400:
        raise _remote_error(answer, status)
    if not isinstance(answer, dict):
        raise NodeNotConnectedError(
            f"[{node.name}][{node.http_address}] answered with a body that is not an object",
            metadata={"node_id": node.node_id},
        )
    return answer


def _remote_error(answer: Any, status: int) -> TaskwardenError:
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict):
        return error_from_dict(error, status)
    return error_from_dict({"type": "exception", "reason": str(error)}, status)
