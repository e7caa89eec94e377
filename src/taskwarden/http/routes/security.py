"""``/_security/...``: who am I, users and API keys, in Elasticsearch's shapes.

Only ``_authenticate`` answers while security is off (as an anonymous admin, so tools such as
the web UI can ask what they may do); managing credentials then is refused.
"""

from __future__ import annotations

from typing import Any

from taskwarden.errors import (
    ActionRequestValidationError,
    IllegalArgumentError,
    ParseError,
    SecurityError,
)
from taskwarden.http.context import Reply, RestContext
from taskwarden.security import Principal, Role, SecurityService, parse_role
from taskwarden.store import ApiKeyRecord, UserRecord
from taskwarden.timevalue import parse_time_value

__all__ = [
    "API_KEY_LIST_PARAMS",
    "NO_PARAMS",
    "authenticate",
    "create_api_key",
    "delete_user",
    "get_users",
    "invalidate_api_keys",
    "list_api_keys",
    "put_user",
]

NO_PARAMS: tuple[str, ...] = ()
API_KEY_LIST_PARAMS = ("id", "name", "username", "owner")
_MAX_NAME = 1024


async def authenticate(ctx: RestContext) -> Reply:
    principal = ctx.principal
    if principal is None:
        return Reply(_identity(Principal("_anonymous", Role.ADMIN), "anonymous"))
    kind = "api_key" if principal.api_key_id is not None else "realm"
    return Reply(_identity(principal, kind))


def _identity(principal: Principal, kind: str) -> dict[str, Any]:
    realm = {"name": "native", "type": "native"}
    body: dict[str, Any] = {
        "username": principal.username,
        "roles": [principal.role.value],
        "full_name": None,
        "email": None,
        "metadata": {},
        "enabled": True,
        "authentication_realm": realm,
        "lookup_realm": realm,
        "authentication_type": kind,
    }
    if principal.api_key_id is not None:
        body["api_key"] = {"id": principal.api_key_id, "name": principal.api_key_name}
    return body


async def create_api_key(ctx: RestContext) -> Reply:
    security = _enabled(ctx)
    body = await ctx.json_body()
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ActionRequestValidationError("api key name is required")
    if len(name) > _MAX_NAME or name != name.strip():
        raise ActionRequestValidationError(
            f"api key name may not begin or end with whitespace and is at most [{_MAX_NAME}] "
            "characters long"
        )
    caller = ctx.principal
    role = parse_role(body["role"]) if "role" in body else (
        caller.role if caller is not None else Role.ADMIN
    )
    lifetime = None
    expiration = body.get("expiration")
    if expiration is not None:
        if not isinstance(expiration, str):
            raise ParseError("[expiration] must be a time value such as [30d]")
        nanos = parse_time_value(expiration, "expiration")
        if nanos <= 0:
            raise IllegalArgumentError("[expiration] must be positive")
        lifetime = nanos // 1_000_000
    created = await security.create_api_key(caller, name, role, lifetime)
    answer: dict[str, Any] = {"id": created.record.key_id, "name": name}
    if created.record.expires_millis is not None:
        answer["expiration"] = created.record.expires_millis
    answer["api_key"] = created.secret
    answer["encoded"] = created.encoded
    return Reply(answer)


async def list_api_keys(ctx: RestContext) -> Reply:
    security = _enabled(ctx)
    owner = ctx.params.str("username", None)
    if ctx.params.bool("owner", False) and ctx.principal is not None:
        owner = ctx.principal.username
    keys = await security.store.api_keys(
        key_id=ctx.params.str("id", None), name=ctx.params.str("name", None), owner=owner
    )
    return Reply({"api_keys": [_key_info(key) for key in keys]})


def _key_info(key: ApiKeyRecord) -> dict[str, Any]:
    info: dict[str, Any] = {
        "id": key.key_id,
        "name": key.name,
        "type": "rest",
        "creation": key.created_millis,
    }
    if key.expires_millis is not None:
        info["expiration"] = key.expires_millis
    info["invalidated"] = key.invalidated_millis is not None
    if key.invalidated_millis is not None:
        info["invalidation"] = key.invalidated_millis
    info.update({"username": key.owner, "realm": "native", "metadata": {}, "role": key.role})
    return info


async def invalidate_api_keys(ctx: RestContext) -> Reply:
    security = _enabled(ctx)
    body = await ctx.json_body()
    ids = body.get("ids")
    if "id" in body:
        ids = [*(ids or []), body["id"]]
    if ids is not None and (
        not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids)
    ):
        raise ParseError("[ids] must be a list of API key ids")
    name = _optional_str(body, "name")
    owner = _optional_str(body, "username")
    if body.get("owner") is True and ctx.principal is not None:
        owner = ctx.principal.username
    if ids is None and name is None and owner is None:
        raise ActionRequestValidationError(
            "One of [api key id(s), api key name, username, realm name] must be specified if "
            "[owner] flag is false"
        )
    done, already = await security.invalidate_api_keys(key_ids=ids, name=name, owner=owner)
    return Reply({
        "invalidated_api_keys": done,
        "previously_invalidated_api_keys": already,
        "error_count": 0,
    })


async def put_user(ctx: RestContext) -> Reply:
    security = _enabled(ctx)
    username = ctx.path_param("username")
    body = await ctx.json_body()
    roles = body.get("roles")
    if not isinstance(roles, list) or not roles:
        raise ActionRequestValidationError("roles are missing")
    role = max((parse_role(raw) for raw in roles), key=lambda r: r.rank)
    password = _optional_str(body, "password")
    if password is None:
        raise ActionRequestValidationError("password must be specified")
    created = await security.put_user(username, password, role)
    return Reply({"created": created})


async def get_users(ctx: RestContext) -> Reply:
    security = _enabled(ctx)
    wanted = ctx.request.path_params.get("username")
    users = await security.store.users()
    if wanted is not None:
        names = set(str(wanted).split(","))
        users = [user for user in users if user.username in names]
        if not users:
            return Reply({}, status=404)
    return Reply({user.username: _user_info(user) for user in users})


def _user_info(user: UserRecord) -> dict[str, Any]:
    return {
        "username": user.username,
        "roles": [user.role],
        "full_name": None,
        "email": None,
        "metadata": {},
        "enabled": True,
    }


async def delete_user(ctx: RestContext) -> Reply:
    security = _enabled(ctx)
    username = ctx.path_param("username")
    caller = ctx.principal
    if caller is not None and caller.username == username and caller.api_key_id is None:
        raise IllegalArgumentError(f"user [{username}] may not delete itself")
    found = await security.delete_user(username)
    return Reply({"found": found}, status=200 if found else 404)


def _enabled(ctx: RestContext) -> SecurityService:
    security = ctx.security
    if security is None or not security.enabled:
        raise SecurityError(
            "security is not enabled on this node; start every node with [--security] to "
            "manage users and API keys"
        )
    return security


def _optional_str(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ParseError(f"[{field}] must be a non-empty string")
    return value
