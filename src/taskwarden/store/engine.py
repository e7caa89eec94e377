"""Connecting to the store: URL rewriting to async drivers and SQLite connection settings."""

from __future__ import annotations

import asyncio
import os
from contextlib import suppress
from pathlib import Path
from threading import Thread
from typing import Any, cast

import aiosqlite
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from taskwarden.errors import IllegalArgumentError, StoreUnavailableError

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MILLIS",
    "FreshStoreBusyError",
    "async_store_url",
    "check_sqlite_folder",
    "create_store_engine",
    "ensure_wal",
    "is_setup_race",
    "lock_postgres_setup",
]

SQLITE_BUSY_TIMEOUT_MILLIS = 5000

POSTGRES_SETUP_LOCK_KEY = 0x7461_736B_7761_7264
"""The transaction-scoped advisory lock ("taskward" in ASCII) that serializes schema creation."""

# duplicate_table and duplicate_object: a concurrent CREATE ... IF NOT EXISTS got there first.
_POSTGRES_DUPLICATE_SQLSTATES = frozenset({"42P07", "42710"})


def create_store_engine(url: str) -> AsyncEngine:
    """An engine on the async driver for ``url``; asyncpg is imported only for PostgreSQL."""
    async_url = async_store_url(url)
    try:
        if async_url.get_backend_name() == "sqlite":
            check_sqlite_folder(async_url)
            engine = create_async_engine(
                async_url, connect_args={"async_creator_fn": _connect_aiosqlite}
            )
            event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
            return engine
        return create_async_engine(async_url, pool_pre_ping=True)
    except ImportError as exc:
        raise StoreUnavailableError(
            f"the store [{async_url.render_as_string(hide_password=True)}] needs the "
            f"[{async_url.get_driver_name()}] package, which is not installed"
        ) from exc


def async_store_url(url: str) -> URL:
    """The async-driver URL for a ``sqlite:///`` or ``postgresql://`` store URL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise IllegalArgumentError(f"invalid store url [{url}]") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "aiosqlite"):
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres") and driver in ("", "asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise IllegalArgumentError(
        f"unsupported store url [{parsed.render_as_string(hide_password=True)}]: "
        "use sqlite:///PATH or postgresql://..."
    )


def check_sqlite_folder(url: URL) -> None:
    """Refuse a SQLite path whose folder is missing or read-only, naming the folder."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    folder = Path(database).parent
    display = url.render_as_string(hide_password=True)
    if not folder.is_dir():
        raise StoreUnavailableError(
            f"cluster store [{display}] is unavailable: folder [{folder}] does not exist "
            "or is not a directory"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreUnavailableError(
            f"cluster store [{display}] is unavailable: folder [{folder}] is not writable"
        )


async def _connect_aiosqlite(*args: Any, **kwargs: Any) -> aiosqlite.Connection:
    """aiosqlite.connect that, when connecting fails, waits for the driver's worker thread to end.

    aiosqlite stops that thread without waiting; left alone, it may report back after the event
    loop has closed and die with "Event loop is closed".
    """
    connection = aiosqlite.connect(*args, **kwargs)
    # 0.22+ keeps its worker in ``_thread`` (older versions were the thread); SQLAlchemy's own
    # connect marks it a daemon the same way.
    worker = cast(Thread, getattr(connection, "_thread", connection))
    worker.daemon = True
    try:
        return await connection
    except BaseException:
        await asyncio.to_thread(worker.join, SQLITE_BUSY_TIMEOUT_MILLIS / 1000)
        raise


def _configure_sqlite_connection(dbapi_connection: Any, _connection_record: Any) -> None:
    """Per-connection SQLite settings; WAL lets several nodes share one file."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MILLIS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA journal_mode")
        if cursor.fetchone()[0] != "wal":
            # Another connection may be switching the same fresh file; open() settles it.
            with suppress(dbapi_connection.dbapi.OperationalError):
                cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


async def ensure_wal(conn: AsyncConnection) -> None:
    """Switch a fresh SQLite file to WAL; while another opener holds it, report a setup race."""
    mode = str(await conn.scalar(text("PRAGMA journal_mode=WAL"))).lower()
    if mode not in ("wal", "memory"):
        raise FreshStoreBusyError(f"journal mode is still [{mode}] while another node opens it")


async def lock_postgres_setup(conn: AsyncConnection) -> None:
    """Hold PostgreSQL's setup lock until ``conn``'s transaction ends.

    CREATE TABLE IF NOT EXISTS checks the catalog before it locks anything, so nodes opening a
    fresh database at once would collide; with the lock they create the schema one at a time and
    each later one finds it in place.
    """
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_SETUP_LOCK_KEY}
    )


class FreshStoreBusyError(Exception):
    """A concurrent opener is still setting up the same fresh store."""


def is_setup_race(cause: BaseException | None) -> bool:
    """Errors a concurrent opener can cause on a fresh store, which go away on retry.

    SQLite refuses the switch to WAL while another connection reads; on PostgreSQL concurrent
    CREATE ... IF NOT EXISTS can collide in the catalog (unique violation, duplicate table or
    type) should an opener ever set up without :func:`lock_postgres_setup`.
    """
    if isinstance(cause, IntegrityError | FreshStoreBusyError):
        return True
    if isinstance(cause, DBAPIError) and _sqlstate(cause) in _POSTGRES_DUPLICATE_SQLSTATES:
        return True
    return isinstance(cause, OperationalError) and "locked" in str(cause.orig).lower()


def _sqlstate(error: DBAPIError) -> str | None:
    """The SQLSTATE of a PostgreSQL error, from the driver adapter or the asyncpg error it wraps."""
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None
