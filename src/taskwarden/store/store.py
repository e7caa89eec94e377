"""ClusterStore: the database every node shares for membership, the cluster secret and task results.

One code path for SQLite (aiosqlite) and PostgreSQL (asyncpg). Every write that must be race-safe
across nodes is a single INSERT ... ON CONFLICT or UPDATE ... RETURNING statement, which both
databases run atomically.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Row, Table, delete, false, func, select, text, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from taskwarden.errors import StoreUnavailableError
from taskwarden.store.credentials import CredentialStore
from taskwarden.store.engine import (
    FreshStoreBusyError,
    create_store_engine,
    is_setup_race,
)
from taskwarden.store.migrations import prepare_schema, schema_version
from taskwarden.store.schema import cluster_metadata, nodes, task_results
from taskwarden.tasks.clock import SYSTEM_CLOCK, Clock

__all__ = ["ClusterStore", "NodeRecord", "StoredResult"]

_SETUP_DEADLINE_SECONDS = 15.0
_SECRET_KEY = "secret"
_UUID_KEY = "uuid"

_UpsertInsert = sqlite.Insert | postgresql.Insert


@dataclass(frozen=True)
class NodeRecord:
    """A member node as its heartbeat last described it."""

    node_id: str
    name: str
    http_address: str
    roles: tuple[str, ...]
    attributes: dict[str, str]
    version: str
    last_seen_millis: int
    started_millis: int


@dataclass(frozen=True)
class StoredResult:
    """A background task's journal row or outcome, as ``GET _tasks/{id}`` serves it."""

    task_id: str
    node_id: str
    completed: bool
    task: dict[str, Any]
    response: Any | None
    error: dict[str, Any] | None
    stored_millis: int

    def to_dict(self) -> dict[str, Any]:
        """The ``GET _tasks/{id}`` body: completed, task, then error or response when present."""
        body: dict[str, Any] = {"completed": self.completed, "task": self.task}
        if self.error is not None:
            body["error"] = self.error
        if self.response is not None:
            body["response"] = self.response
        return body


class ClusterStore:
    """Shared cluster state; every database failure surfaces as :class:`StoreUnavailableError`.

    Task ids (``node:n``) repeat when a node restarts and counts from 1 again, so a row is one
    *life* of an id: :meth:`journal_task` replaces whatever an earlier life left behind, and
    :meth:`store_result` completes only the current life, once.
    """

    def __init__(self, engine: AsyncEngine, clock: Clock = SYSTEM_CLOCK) -> None:
        self._engine = engine
        self._clock = clock
        self._display_url = engine.url.render_as_string(hide_password=True)
        self._settled_metadata: dict[str, str] = {}
        # Told each operation's name and duration in seconds (the node's metrics).
        self.observer: Callable[[str, float], None] | None = None
        self._insert: Callable[[Table], _UpsertInsert] = (
            postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        )
        # Built once and executed with a row of parameters: building an upsert costs more CPU
        # than the database spends running it, and a statement built once is compiled once.
        self._node_upsert = self._upsert(nodes, nodes.c.node_id, _NODE_COLUMNS)
        self._journal_upsert = self._upsert(task_results, task_results.c.task_id, _RESULT_COLUMNS)
        self._result_upsert = self._upsert(
            task_results, task_results.c.task_id, _OUTCOME_COLUMNS,
            where=task_results.c.completed == false(),
        ).returning(task_results.c.task_id)
        self.credentials = CredentialStore(engine, self._insert, self._unavailable_on_failure)

    def _upsert(
        self, table: Table, key: Any, columns: tuple[str, ...], *, where: Any = None
    ) -> Any:
        """INSERT, or UPDATE ``columns`` of the row with the same ``key``."""
        stmt = self._insert(table)
        return stmt.on_conflict_do_update(
            index_elements=[key], set_={name: stmt.excluded[name] for name in columns}, where=where
        )

    @classmethod
    async def open(cls, url: str, *, clock: Clock = SYSTEM_CLOCK) -> ClusterStore:
        """Connect and create the schema if missing; safe when several nodes open at once."""
        engine = create_store_engine(url)
        store = cls(engine, clock)
        try:
            await store._prepare()
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> None:
        """One cheap round trip; raises StoreUnavailableError when the database is unreachable."""
        with self._unavailable_on_failure("ping"):
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

    # ---- cluster-wide facts ------------------------------------------------------------------

    async def cluster_secret(self) -> str:
        """The secret nodes authenticate each other with; the first node to ask creates it."""
        return await self._metadata_once(_SECRET_KEY, lambda: secrets.token_urlsafe(32))

    async def cluster_uuid(self) -> str:
        """The cluster's identity, 22 url-safe base64 characters like Elasticsearch's."""
        return await self._metadata_once(_UUID_KEY, _new_cluster_uuid)

    # ---- membership --------------------------------------------------------------------------

    async def upsert_node(self, node: NodeRecord) -> None:
        row = {
            "node_id": node.node_id,
            "name": node.name,
            "http_address": node.http_address,
            "roles": _dump(list(node.roles)),
            "attributes": _dump(node.attributes),
            "version": node.version,
            "last_seen_millis": node.last_seen_millis,
            "started_millis": node.started_millis,
        }
        with self._unavailable_on_failure("upsert_node"):
            async with self._engine.begin() as conn:
                await conn.execute(self._node_upsert, row)

    async def remove_node(self, node_id: str) -> None:
        with self._unavailable_on_failure("remove_node"):
            async with self._engine.begin() as conn:
                await conn.execute(delete(nodes).where(nodes.c.node_id == node_id))

    async def nodes(self) -> list[NodeRecord]:
        with self._unavailable_on_failure("nodes"):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(select(nodes).order_by(nodes.c.node_id))).all()
        return [_node_from_row(row) for row in rows]

    # ---- background-task journal and results -------------------------------------------------

    async def journal_task(self, task_id: str, node_id: str, task: dict[str, Any]) -> None:
        """Record that a background task started, replacing what an earlier life of the id left."""
        now = self._clock.epoch_millis()
        row = {
            "task_id": task_id,
            "node_id": node_id,
            "task_seq": _task_seq(task_id),
            "completed": False,
            "task": _dump(task),
            "response": None,
            "error": None,
            "started_millis": now,
            "stored_millis": now,
        }
        with self._unavailable_on_failure("journal_task"):
            async with self._engine.begin() as conn:
                await conn.execute(self._journal_upsert, row)

    async def store_result(
        self,
        task_id: str,
        node_id: str,
        task: dict[str, Any],
        *,
        response: Any | None = None,
        error: dict[str, Any] | None = None,
    ) -> bool:
        """Store a task's outcome; False (and nothing changed) when an outcome is already stored."""
        if response is not None and error is not None:
            raise ValueError(f"task [{task_id}] outcome has both a response and an error")
        now = self._clock.epoch_millis()
        row = {
            "task_id": task_id,
            "node_id": node_id,
            "task_seq": _task_seq(task_id),
            "completed": True,
            "task": _dump(task),
            "response": None if response is None else _dump(response),
            "error": None if error is None else _dump(error),
            "started_millis": now,
            "stored_millis": now,
        }
        with self._unavailable_on_failure("store_result"):
            async with self._engine.begin() as conn:
                stored = await conn.execute(self._result_upsert, row)
                return stored.first() is not None

    async def last_task_seq(self, node_id: str) -> int:
        """The highest task number ``node_id`` ever journaled or stored (0 if none).

        A restarted node numbers its tasks after it, so a new task never shadows a stored outcome.
        """
        query = select(func.max(task_results.c.task_seq)).where(task_results.c.node_id == node_id)
        with self._unavailable_on_failure("last_task_seq"):
            async with self._engine.connect() as conn:
                value = (await conn.execute(query)).scalar()
        return int(value or 0)

    async def get_result(self, task_id: str) -> StoredResult | None:
        query = select(task_results).where(task_results.c.task_id == task_id)
        with self._unavailable_on_failure("get_result"):
            async with self._engine.connect() as conn:
                row = (await conn.execute(query)).first()
        return None if row is None else _result_from_row(row)

    async def unfinished_tasks(self, node_id: str) -> list[StoredResult]:
        """Tasks the node journaled but never completed, oldest first."""
        query = (
            select(task_results)
            .where(task_results.c.node_id == node_id, task_results.c.completed == false())
            .order_by(task_results.c.started_millis, task_results.c.task_id)
        )
        with self._unavailable_on_failure("unfinished_tasks"):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        return [_result_from_row(row) for row in rows]

    async def fail_unfinished(self, node_id: str, error: dict[str, Any]) -> list[str]:
        """Complete every unfinished task of ``node_id`` with ``error``; returns the ids it failed.

        One UPDATE ... RETURNING: when two nodes race to clean up after the same dead node, each
        row is claimed by exactly one of them.
        """
        stmt = (
            update(task_results)
            .where(task_results.c.node_id == node_id, task_results.c.completed == false())
            .values(
                completed=True,
                response=None,
                error=_dump(error),
                stored_millis=self._clock.epoch_millis(),
            )
            .returning(task_results.c.task_id)
        )
        with self._unavailable_on_failure("fail_unfinished"):
            async with self._engine.begin() as conn:
                failed = list((await conn.execute(stmt)).scalars())
        return sorted(failed, key=_task_id_order)

    async def delete_results_older_than(self, epoch_millis: int) -> int:
        """Delete completed results stored before ``epoch_millis``; running tasks' rows stay."""
        stmt = delete(task_results).where(
            task_results.c.completed == true(), task_results.c.stored_millis < epoch_millis
        )
        with self._unavailable_on_failure("delete_results_older_than"):
            async with self._engine.begin() as conn:
                return (await conn.execute(stmt)).rowcount

    # ---- internals ---------------------------------------------------------------------------

    async def _prepare(self) -> None:
        """Create or upgrade the schema, retrying while concurrent openers hold locks."""
        deadline = time.monotonic() + _SETUP_DEADLINE_SECONDS
        pause = 0.01
        while True:
            try:
                with self._unavailable_on_failure("prepare"):
                    async with self._engine.begin() as conn:
                        version = await prepare_schema(conn)
                break
            except StoreUnavailableError as exc:
                if not is_setup_race(exc.__cause__) or time.monotonic() > deadline:
                    raise
            except ValueError:
                raise StoreUnavailableError(
                    f"cluster store [{self._display_url}] has a schema version that is not a "
                    "number"
                ) from None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)
        if version != schema_version():
            raise StoreUnavailableError(
                f"cluster store [{self._display_url}] has schema version [{version}]; "
                f"this node supports [{schema_version()}]"
            )

    async def _metadata_once(self, key: str, make_value: Callable[[], str]) -> str:
        """The value stored under ``key``, created by whichever node asks first."""
        settled = self._settled_metadata.get(key)
        if settled is not None:
            return settled
        query = select(cluster_metadata.c.value).where(cluster_metadata.c.key == key)
        with self._unavailable_on_failure("metadata_once"):
            async with self._engine.connect() as conn:
                value = await conn.scalar(query)
            if value is None:
                claim = (
                    self._insert(cluster_metadata)
                    .values(key=key, value=make_value())
                    .on_conflict_do_nothing(index_elements=[cluster_metadata.c.key])
                )
                async with self._engine.begin() as conn:
                    await conn.execute(claim)
                    value = await conn.scalar(query)
        if value is None:
            raise StoreUnavailableError(f"cluster store lost the [{key}] it just stored")
        self._settled_metadata[key] = str(value)
        return str(value)

    @contextmanager
    def _unavailable_on_failure(self, operation: str) -> Iterator[None]:
        """Database errors become StoreUnavailableError; the time taken goes to the observer."""
        started = time.perf_counter()
        try:
            yield
        except (DBAPIError, PoolTimeoutError, OSError, FreshStoreBusyError) as exc:
            detail = exc.orig if isinstance(exc, DBAPIError) else exc
            raise StoreUnavailableError(
                f"cluster store [{self._display_url}] is unavailable: {detail}"
            ) from exc
        finally:
            if self.observer is not None:
                self.observer(operation, time.perf_counter() - started)


_NODE_COLUMNS = (
    "name", "http_address", "roles", "attributes", "version", "last_seen_millis", "started_millis",
)
_RESULT_COLUMNS = (
    "node_id", "task_seq", "completed", "task", "response", "error", "started_millis",
    "stored_millis",
)
_OUTCOME_COLUMNS = ("node_id", "completed", "task", "response", "error", "stored_millis")


def _dump(value: Any) -> str:
    return orjson.dumps(value).decode()


def _load(raw: str | None) -> Any:
    return None if raw is None else orjson.loads(raw)


def _new_cluster_uuid() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _task_seq(task_id: str) -> int:
    _, _, number = task_id.rpartition(":")
    return int(number) if number.isdigit() else 0


def _task_id_order(task_id: str) -> tuple[str, int, str]:
    node, _, seq = task_id.rpartition(":")
    return (node, int(seq) if seq.isdigit() else -1, task_id)


def _node_from_row(row: Row[Any]) -> NodeRecord:
    return NodeRecord(
        node_id=row.node_id,
        name=row.name,
        http_address=row.http_address,
        roles=tuple(_load(row.roles)),
        attributes=dict(_load(row.attributes)),
        version=row.version,
        last_seen_millis=row.last_seen_millis,
        started_millis=row.started_millis,
    )


def _result_from_row(row: Row[Any]) -> StoredResult:
    return StoredResult(
        task_id=row.task_id,
        node_id=row.node_id,
        completed=bool(row.completed),
        task=_load(row.task),
        response=_load(row.response),
        error=_load(row.error),
        stored_millis=row.stored_millis,
    )
