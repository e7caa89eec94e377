"""Reading a store's database directly, past ClusterStore, to check what it really holds."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


async def raw_query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` on the store's database directly (autocommit)."""
    if is_sqlite(url):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as raw, raw:
            return [tuple(row) for row in raw.execute(sql).fetchall()]
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()
