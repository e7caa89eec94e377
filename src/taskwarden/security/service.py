"""SecurityService: who is calling (authentication) and whether they may (authorization).

Credentials live in the cluster store; rows are remembered for a few seconds so that a request
costs no database round trip, and a password is checked with scrypt once per stored hash.
A change made through this node takes effect here at once and on the others within the TTL.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from typing import Generic, TypeVar

from taskwarden.errors import AuthenticationError, IllegalArgumentError, SecurityError
from taskwarden.security.hashing import (
    MIN_PASSWORD_LENGTH,
    hash_api_key,
    hash_password,
    new_api_key,
    verify_api_key,
    verify_password,
)
from taskwarden.security.header import ApiKeyCredentials, BasicCredentials, parse_authorization
from taskwarden.security.roles import Principal, Role
from taskwarden.store.credentials import ApiKeyRecord, CredentialStore, UserRecord
from taskwarden.tasks.clock import SYSTEM_CLOCK, Clock

__all__ = ["ADMIN_USER", "CACHE_TTL_S", "CreatedApiKey", "SecurityService"]

log = logging.getLogger("taskwarden.security")

ADMIN_USER = "admin"
CACHE_TTL_S = 5.0
_CACHE_SIZE = 10_000
_BASIC_CHALLENGE = 'Basic realm="security" charset="UTF-8"'
_API_KEY_CHALLENGE = "ApiKey"

K = TypeVar("K")
V = TypeVar("V")


class _Recent(Generic[K, V]):
    """Values looked up recently, each kept for ``ttl_s`` and at most ``size`` of them."""

    def __init__(self, ttl_s: float, size: int = _CACHE_SIZE) -> None:
        self.ttl_s = ttl_s
        self._size = size
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def get(self, key: K) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[1] > self.ttl_s:
            return False, None
        return True, entry[0]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (value, time.monotonic())
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)


class CreatedApiKey:
    """A new key as the create call answers it: the secret appears here and nowhere else."""

    def __init__(self, record: ApiKeyRecord, secret: str) -> None:
        self.record = record
        self.secret = secret

    @property
    def encoded(self) -> str:
        return base64.b64encode(f"{self.record.key_id}:{self.secret}".encode()).decode()


class SecurityService:
    """Authenticates requests and checks their privilege; manages users and API keys."""

    def __init__(
        self, store: CredentialStore, *, enabled: bool, clock: Clock = SYSTEM_CLOCK,
        cache_ttl_s: float = CACHE_TTL_S,
    ) -> None:
        self.store = store
        self.enabled = enabled
        self._clock = clock
        self._keys: _Recent[str, ApiKeyRecord | None] = _Recent(cache_ttl_s)
        self._users: _Recent[str, UserRecord | None] = _Recent(cache_ttl_s)
        # Passwords already checked against a stored hash, as keyed digests (never the password).
        self._verified: _Recent[bytes, bool] = _Recent(float("inf"))
        self._memo_key = secrets.token_bytes(32)
        self._decoy: str | None = None

    # ---- authentication ----------------------------------------------------------------------

    async def authenticate(
        self, authorization: str | None, uri: str, *, from_script: bool = False
    ) -> Principal:
        """The caller of ``uri``, or a 401 carrying the challenges a client may answer.

        ``from_script``: a page's own request (``X-Requested-With``), which gets no Basic
        challenge, so a browser does not pop up its own login box over the page's.
        """
        challenges = [_API_KEY_CHALLENGE] if from_script else [_BASIC_CHALLENGE, _API_KEY_CHALLENGE]
        try:
            credentials = parse_authorization(authorization)
        except ValueError as exc:
            raise _unauthenticated(
                "unable to authenticate with provided credentials and anonymous access is not "
                "allowed for this request", challenges, str(exc),
            ) from None
        if credentials is None:
            raise _unauthenticated(
                f"missing authentication credentials for REST request [{uri}]", challenges
            )
        if isinstance(credentials, BasicCredentials):
            user = await self._password_user(credentials)
            if user is None:
                log.info("authentication failed for user [%s] on [%s]", credentials.username, uri)
                raise _unauthenticated(
                    f"unable to authenticate user [{credentials.username}] for REST request "
                    f"[{uri}]", challenges,
                )
            return Principal(user.username, Role(user.role))
        key, problem = await self._valid_key(credentials)
        if key is None:
            log.info("authentication failed for API key [%s] on [%s]: %s",
                     credentials.key_id, uri, problem)
            raise _unauthenticated(
                "unable to authenticate with provided credentials and anonymous access is not "
                "allowed for this request", challenges, f"API key: {problem}",
            )
        return Principal(key.owner, Role(key.role), key.key_id, key.name)

    def authorize(self, principal: Principal, action: str, privilege: Role) -> None:
        """A 403 naming the action and the roles that would grant it, unless ``principal`` may."""
        if principal.role.grants(privilege):
            return
        granted_by = ",".join(privilege.granted_by())
        raise SecurityError(
            f"action [{action}] is unauthorized for {principal.describe()} with effective roles "
            f"[{principal.role.value}], this action is granted by the cluster privileges "
            f"[{granted_by}]"
        )

    async def _password_user(self, credentials: BasicCredentials) -> UserRecord | None:
        user = await self._user(credentials.username)
        if user is None:
            # As slow as a wrong password, so that timing does not tell which users exist.
            await asyncio.to_thread(self._verify_decoy, credentials.password)
            return None
        memo = hmac.digest(
            self._memo_key, f"{user.password_hash}\0{credentials.password}".encode(), "sha256"
        )
        known, _ = self._verified.get(memo)
        if known:
            return user
        if not await asyncio.to_thread(verify_password, credentials.password, user.password_hash):
            return None
        self._verified.put(memo, True)
        return user

    async def _valid_key(self, credentials: ApiKeyCredentials) -> tuple[ApiKeyRecord | None, str]:
        known, key = self._keys.get(credentials.key_id)
        if not known:
            key = await self.store.api_key(credentials.key_id)
            self._keys.put(credentials.key_id, key)
        if key is None:
            return None, f"api key [{credentials.key_id}] does not exist"
        if not verify_api_key(credentials.secret, key.key_hash):
            return None, f"invalid credentials for API key [{credentials.key_id}]"
        if key.invalidated_millis is not None:
            return None, f"api key [{credentials.key_id}] has been invalidated"
        if key.expires_millis is not None and key.expires_millis <= self._clock.epoch_millis():
            return None, f"api key [{credentials.key_id}] is expired"
        return key, ""

    async def _user(self, username: str) -> UserRecord | None:
        known, user = self._users.get(username)
        if not known:
            user = await self.store.user(username)
            self._users.put(username, user)
        return user

    def _verify_decoy(self, password: str) -> None:
        """A password check against a hash of nothing (in a worker thread: hashing is slow)."""
        if self._decoy is None:
            self._decoy = hash_password(secrets.token_urlsafe(16))
        verify_password(password, self._decoy)

    # ---- users and keys ----------------------------------------------------------------------

    async def bootstrap(self, admin_password: str | None) -> str | None:
        """On a cluster with no credentials at all, create the ``admin`` user.

        Returns the password when it was generated here (to be shown once), else None.
        """
        if not await self.store.is_empty():
            return None
        generated = admin_password is None
        password = admin_password if admin_password is not None else secrets.token_urlsafe(18)
        _check_password(password)
        user = UserRecord(ADMIN_USER, hash_password(password), Role.ADMIN.value, self._now())
        created = await self.store.add_first_user(user)
        return password if created and generated else None

    async def put_user(self, username: str, password: str, role: Role) -> bool:
        """Create or update a user; True when created."""
        _check_username(username)
        _check_password(password)
        hashed = await asyncio.to_thread(hash_password, password)
        created = await self.store.put_user(UserRecord(username, hashed, role.value, self._now()))
        self._users.forget(username)
        return created

    async def delete_user(self, username: str) -> bool:
        found, invalidated = await self.store.delete_user(username, self._now())
        self._users.forget(username)
        for key_id in invalidated:
            self._keys.forget(key_id)
        return found

    async def create_api_key(
        self, owner: Principal | None, name: str, role: Role, lifetime_millis: int | None
    ) -> CreatedApiKey:
        """A new key, expiring ``lifetime_millis`` from now by this service's clock (never
        when None)."""
        key_id, secret = new_api_key()
        now = self._now()
        record = ApiKeyRecord(
            key_id=key_id,
            name=name,
            key_hash=hash_api_key(secret),
            role=role.value,
            owner=owner.username if owner is not None else ADMIN_USER,
            created_millis=now,
            expires_millis=None if lifetime_millis is None else now + lifetime_millis,
        )
        await self.store.add_api_key(record)
        return CreatedApiKey(record, secret)

    async def invalidate_api_keys(
        self, *, key_ids: list[str] | None = None, name: str | None = None,
        owner: str | None = None,
    ) -> tuple[list[str], list[str]]:
        done, already = await self.store.invalidate_api_keys(
            self._now(), key_ids=key_ids, name=name, owner=owner
        )
        for key_id in done:
            self._keys.forget(key_id)
        return done, already

    def _now(self) -> int:
        return self._clock.epoch_millis()


def _unauthenticated(
    reason: str, challenges: list[str], unsuccessful: str | None = None
) -> AuthenticationError:
    metadata: dict[str, object] = {}
    if unsuccessful is not None:
        metadata["additional_unsuccessful_credentials"] = unsuccessful
    metadata["header"] = {"WWW-Authenticate": challenges}
    return AuthenticationError(reason, metadata=metadata)


def challenges_of(error: AuthenticationError) -> list[str]:
    """The ``WWW-Authenticate`` values an authentication failure is answered with."""
    header = error.metadata.get("header")
    if isinstance(header, dict):
        values = header.get("WWW-Authenticate")
        if isinstance(values, list):
            return [str(v) for v in values]
    return []


def _check_username(username: str) -> None:
    if not username or len(username) > 255 or not username.isprintable() or ":" in username:
        raise IllegalArgumentError(
            f"invalid username [{username}]: 1 to 255 printable characters, no [:]"
        )


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise IllegalArgumentError(
            f"passwords must be at least [{MIN_PASSWORD_LENGTH}] characters long"
        )

