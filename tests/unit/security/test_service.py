"""SecurityService on a real SQLite store with a manual clock: keys, users, expiry, caching."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from taskwarden.errors import AuthenticationError, IllegalArgumentError, SecurityError
from taskwarden.security import Role, SecurityService
from taskwarden.security.header import ApiKeyCredentials, BasicCredentials, parse_authorization
from taskwarden.security.roles import Principal
from taskwarden.store import ClusterStore
from taskwarden.tasks.clock import ManualClock


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ClusterStore]:
    opened = await ClusterStore.open(f"sqlite:///{tmp_path / 'cluster.db'}")
    try:
        yield opened
    finally:
        await opened.close()


def api_key(key_id: str, secret: str) -> str:
    return "ApiKey " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_authorization_headers_are_read_the_elasticsearch_way() -> None:
    assert parse_authorization(None) is None
    assert parse_authorization("Bearer abc") is None
    assert parse_authorization(basic("ann", "p:w")) == BasicCredentials("ann", "p:w")
    assert parse_authorization(api_key("id1", "s")) == ApiKeyCredentials("id1", "s")
    assert parse_authorization("apikey " + base64.b64encode(b"a:b").decode()) == (
        ApiKeyCredentials("a", "b")
    )
    for bad in ("ApiKey ***", "Basic " + base64.b64encode(b":pw").decode()):
        with pytest.raises(ValueError):
            parse_authorization(bad)


def test_each_role_holds_the_privileges_below_it() -> None:
    assert Role.ADMIN.grants(Role.MANAGE) and Role.MANAGE.grants(Role.MONITOR)
    assert not Role.MONITOR.grants(Role.MANAGE) and not Role.MANAGE.grants(Role.ADMIN)
    assert Role.MANAGE.granted_by() == ["manage", "admin"]


async def test_the_first_node_creates_the_admin_once(store: ClusterStore) -> None:
    first = SecurityService(store.credentials, enabled=True)
    second = SecurityService(store.credentials, enabled=True)
    generated = await first.bootstrap(None)
    assert generated is not None and len(generated) >= 20
    assert await second.bootstrap("other-password") is None
    admin = await first.authenticate(basic("admin", generated), "/")
    assert admin == Principal("admin", Role.ADMIN)
    with pytest.raises(AuthenticationError):
        await second.authenticate(basic("admin", "other-password"), "/")


async def test_a_given_admin_password_is_not_echoed(store: ClusterStore) -> None:
    service = SecurityService(store.credentials, enabled=True)
    assert await service.bootstrap("chosen-password") is None
    assert (await service.authenticate(basic("admin", "chosen-password"), "/")).role is Role.ADMIN
    with pytest.raises(IllegalArgumentError):
        await SecurityService(store.credentials, enabled=True).put_user("x", "short", Role.ADMIN)


async def test_keys_expire_by_the_clock(store: ClusterStore) -> None:
    clock = ManualClock()
    service = SecurityService(store.credentials, enabled=True, clock=clock)
    created = await service.create_api_key(
        Principal("admin", Role.ADMIN), "k", Role.MANAGE, 1000
    )
    assert created.record.expires_millis == clock.epoch_millis() + 1000
    header = api_key(created.record.key_id, created.secret)
    principal = await service.authenticate(header, "/")
    assert principal == Principal("admin", Role.MANAGE, created.record.key_id, "k")
    clock.advance(1.0)
    with pytest.raises(AuthenticationError) as refused:
        await service.authenticate(header, "/")
    assert refused.value.metadata["additional_unsuccessful_credentials"] == (
        f"API key: api key [{created.record.key_id}] is expired"
    )
    assert base64.b64decode(created.encoded).decode() == (
        f"{created.record.key_id}:{created.secret}"
    )


async def test_another_node_sees_a_revocation_once_its_cache_expires(
    store: ClusterStore,
) -> None:
    here = SecurityService(store.credentials, enabled=True)
    there = SecurityService(store.credentials, enabled=True, cache_ttl_s=0.0)
    cached = SecurityService(store.credentials, enabled=True, cache_ttl_s=3600)
    created = await here.create_api_key(None, "k", Role.MONITOR, None)
    header = api_key(created.record.key_id, created.secret)
    for service in (here, there, cached):
        await service.authenticate(header, "/")
    await here.invalidate_api_keys(key_ids=[created.record.key_id])
    for service in (here, there):
        with pytest.raises(AuthenticationError):
            await service.authenticate(header, "/")
    # Within its TTL a node still trusts what it read: the documented bound on revocation.
    assert (await cached.authenticate(header, "/")).api_key_id == created.record.key_id


async def test_a_changed_password_replaces_the_old_one(store: ClusterStore) -> None:
    service = SecurityService(store.credentials, enabled=True)
    assert await service.put_user("ann", "first-pass", Role.MONITOR) is True
    assert (await service.authenticate(basic("ann", "first-pass"), "/")).role is Role.MONITOR
    assert await service.put_user("ann", "second-pass", Role.MANAGE) is False
    with pytest.raises(AuthenticationError):
        await service.authenticate(basic("ann", "first-pass"), "/")
    assert (await service.authenticate(basic("ann", "second-pass"), "/")).role is Role.MANAGE


def test_a_missing_privilege_names_the_action_and_the_roles_granting_it() -> None:
    service = SecurityService.__new__(SecurityService)
    with pytest.raises(SecurityError, match=r"action \[cluster:admin/tasks/cancel\] is "
                       r"unauthorized for user \[ann\] with effective roles \[monitor\], this "
                       r"action is granted by the cluster privileges \[manage,admin\]"):
        service.authorize(Principal("ann", Role.MONITOR), "cluster:admin/tasks/cancel",
                          Role.MANAGE)
    service.authorize(Principal("ann", Role.ADMIN), "cluster:admin/tasks/cancel", Role.MANAGE)
