"""Users and API keys in the cluster store: only hashes of their secrets are ever written.

Every node reads the same rows, so a key created or revoked through one node holds on all.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Table, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from taskwarden.store.schema import api_keys, users

__all__ = ["ApiKeyRecord", "CredentialStore", "UserRecord"]


@dataclass(frozen=True)
class UserRecord:
    """A user who signs in with a password."""

    username: str
    password_hash: str
    role: str
    created_millis: int


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key; ``key_hash`` is a digest of its secret part."""

    key_id: str
    name: str
    key_hash: str
    role: str
    owner: str
    created_millis: int
    expires_millis: int | None = None
    invalidated_millis: int | None = None


class CredentialStore:
    """Reads and writes users and API keys; database failures become StoreUnavailableError."""

    def __init__(
        self,
        engine: AsyncEngine,
        insert: Callable[[Table], Any],
        guarded: Callable[[str], AbstractContextManager[None]],
    ) -> None:
        self._engine = engine
        self._insert = insert
        self._guarded = guarded

    async def is_empty(self) -> bool:
        """No user and no API key exists yet (a cluster whose security was never set up)."""
        query = select(~exists(select(users.c.username)) & ~exists(select(api_keys.c.key_id)))
        with self._guarded("credentials_empty"):
            async with self._engine.connect() as conn:
                return bool(await conn.scalar(query))

    # ---- users -------------------------------------------------------------------------------

    async def user(self, username: str) -> UserRecord | None:
        query = select(users).where(users.c.username == username)
        with self._guarded("user"):
            async with self._engine.connect() as conn:
                row = (await conn.execute(query)).first()
        return None if row is None else _user(row)

    async def users(self) -> list[UserRecord]:
        with self._guarded("users"):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(select(users).order_by(users.c.username))).all()
        return [_user(row) for row in rows]

    async def put_user(self, user: UserRecord) -> bool:
        """Create or replace ``user`` (its creation time is kept); True when it is new."""
        stmt = self._insert(users)
        upsert = stmt.on_conflict_do_update(
            index_elements=[users.c.username],
            set_={"password_hash": stmt.excluded.password_hash, "role": stmt.excluded.role},
        )
        found = select(func.count()).where(users.c.username == user.username)
        with self._guarded("put_user"):
            async with self._engine.begin() as conn:
                existed = bool(await conn.scalar(found))
                await conn.execute(upsert, _row(user))
        return not existed

    async def add_first_user(self, user: UserRecord) -> bool:
        """Create ``user`` unless any user or key exists; False when another node was first."""
        with self._guarded("add_first_user"):
            async with self._engine.begin() as conn:
                taken = await conn.scalar(
                    select(exists(select(users.c.username)) | exists(select(api_keys.c.key_id)))
                )
                if taken:
                    return False
                claim = self._insert(users).on_conflict_do_nothing(
                    index_elements=[users.c.username]
                )
                result = await conn.execute(claim, _row(user))
        return bool(result.rowcount)

    async def delete_user(self, username: str, now_millis: int) -> tuple[bool, list[str]]:
        """Delete the user and invalidate the API keys it owns: (whether there was one, the ids
        of the keys invalidated now)."""
        with self._guarded("delete_user"):
            async with self._engine.begin() as conn:
                result = await conn.execute(delete(users).where(users.c.username == username))
                invalidated = await conn.execute(
                    update(api_keys)
                    .where(api_keys.c.owner == username, api_keys.c.invalidated_millis.is_(None))
                    .values(invalidated_millis=now_millis)
                    .returning(api_keys.c.key_id)
                )
                key_ids = [row.key_id for row in invalidated]
        return bool(result.rowcount), key_ids

    # ---- API keys ----------------------------------------------------------------------------

    async def add_api_key(self, key: ApiKeyRecord) -> None:
        with self._guarded("add_api_key"):
            async with self._engine.begin() as conn:
                await conn.execute(api_keys.insert(), _row(key))

    async def api_key(self, key_id: str) -> ApiKeyRecord | None:
        query = select(api_keys).where(api_keys.c.key_id == key_id)
        with self._guarded("api_key"):
            async with self._engine.connect() as conn:
                row = (await conn.execute(query)).first()
        return None if row is None else _api_key(row)

    async def api_keys(
        self, *, key_id: str | None = None, name: str | None = None, owner: str | None = None
    ) -> list[ApiKeyRecord]:
        """Keys matching every given filter, oldest first."""
        query = select(api_keys).where(*_key_filters(key_id, name, owner))
        query = query.order_by(api_keys.c.created_millis, api_keys.c.key_id)
        with self._guarded("api_keys"):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        return [_api_key(row) for row in rows]

    async def invalidate_api_keys(
        self, now_millis: int, *, key_ids: list[str] | None = None, name: str | None = None,
        owner: str | None = None,
    ) -> tuple[list[str], list[str]]:
        """Invalidate matching keys: (ids invalidated now, ids that already were)."""
        filters = _key_filters(None, name, owner)
        if key_ids is not None:
            filters.append(api_keys.c.key_id.in_(key_ids))
        query = select(api_keys.c.key_id, api_keys.c.invalidated_millis).where(*filters)
        with self._guarded("invalidate_api_keys"):
            async with self._engine.begin() as conn:
                rows = (await conn.execute(query.order_by(api_keys.c.key_id))).all()
                fresh = [row.key_id for row in rows if row.invalidated_millis is None]
                if fresh:
                    await conn.execute(
                        update(api_keys)
                        .where(api_keys.c.key_id.in_(fresh), api_keys.c.invalidated_millis.is_(None))
                        .values(invalidated_millis=now_millis)
                    )
        return fresh, [row.key_id for row in rows if row.invalidated_millis is not None]


def _key_filters(key_id: str | None, name: str | None, owner: str | None) -> list[Any]:
    filters: list[Any] = []
    if key_id is not None:
        filters.append(api_keys.c.key_id == key_id)
    if name is not None:
        filters.append(api_keys.c.name == name)
    if owner is not None:
        filters.append(api_keys.c.owner == owner)
    return filters


def _row(record: UserRecord | ApiKeyRecord) -> dict[str, Any]:
    return dict(record.__dict__)


def _user(row: Row[Any]) -> UserRecord:
    return UserRecord(row.username, row.password_hash, row.role, row.created_millis)


def _api_key(row: Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.key_id,
        name=row.name,
        key_hash=row.key_hash,
        role=row.role,
        owner=row.owner,
        created_millis=row.created_millis,
        expires_millis=row.expires_millis,
        invalidated_millis=row.invalidated_millis,
    )
