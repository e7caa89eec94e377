"""Creating the store's schema, or upgrading an older one, safely while several nodes open it.

A store records its schema version in ``cluster_metadata``. Opening a fresh store creates every
table at the current version; opening an older one runs the upgrade steps it lacks, in order, in
the same transaction that bumps the version, so a node that crashes halfway leaves the store as
it was. Openers take turns: PostgreSQL's setup lock, SQLite's write lock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex, CreateTable

from taskwarden.store.engine import ensure_wal, lock_postgres_setup
from taskwarden.store.schema import (
    SCHEMA_VERSION_KEY,
    api_keys,
    cluster_metadata,
    metadata,
    users,
)

__all__ = ["UPGRADES", "UpgradeStep", "prepare_schema", "schema_version"]

UpgradeStep = Callable[[AsyncConnection], Awaitable[None]]



async def _add_credentials(conn: AsyncConnection) -> None:
    """Version 2: users and API keys (security)."""
    for table in (users, api_keys):
        await _create_table(conn, table)


UPGRADES: list[UpgradeStep] = [_add_credentials]
"""``UPGRADES[i]`` turns a store of version ``i + 1`` into version ``i + 2``. Change a table in
``schema`` and append the step that brings existing stores to the new shape."""


def schema_version() -> int:
    """The version this code writes: the first schema plus every upgrade step."""
    return 1 + len(UPGRADES)


async def prepare_schema(conn: AsyncConnection) -> int:
    """Inside ``conn``'s transaction: create or upgrade; returns the store's version after it.

    A version newer than :func:`schema_version` is returned untouched, for the caller to refuse.
    """
    if conn.dialect.name == "sqlite":
        await ensure_wal(conn)
    else:
        await lock_postgres_setup(conn)
    await conn.execute(CreateTable(cluster_metadata, if_not_exists=True))
    version_row = cluster_metadata.c.key == SCHEMA_VERSION_KEY
    if conn.dialect.name == "sqlite":
        # A write first: SQLite then holds its write lock, and openers take turns from here.
        await conn.execute(
            update(cluster_metadata).where(version_row).values(value=cluster_metadata.c.value)
        )
    stored = await conn.scalar(select(cluster_metadata.c.value).where(version_row))
    current = schema_version()
    if stored is None:
        await _create_tables(conn)
        await conn.execute(
            cluster_metadata.insert().values(key=SCHEMA_VERSION_KEY, value=str(current))
        )
        return current
    version = int(stored)
    if version > current:
        return version
    for step in UPGRADES[version - 1:]:
        await step(conn)
    if version < current:
        await conn.execute(
            update(cluster_metadata).where(version_row).values(value=str(current))
        )
    await _create_tables(conn)
    return current


async def _create_tables(conn: AsyncConnection) -> None:
    """Tables and indexes of the current shape that do not exist yet."""
    for table in metadata.sorted_tables:
        await _create_table(conn, table)


async def _create_table(conn: AsyncConnection, table: Table) -> None:
    await conn.execute(CreateTable(table, if_not_exists=True))
    for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
        await conn.execute(CreateIndex(index, if_not_exists=True))
