"""Roles and what they grant: each role has every privilege of the roles below it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from taskwarden.errors import IllegalArgumentError

__all__ = ["Principal", "Role", "parse_role"]


class Role(enum.Enum):
    """``monitor`` reads, ``manage`` also cancels and runs actions, ``admin`` also manages
    users and keys. A route requires one of them as its privilege."""

    MONITOR = "monitor"
    MANAGE = "manage"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def grants(self, privilege: Role) -> bool:
        return self.rank >= privilege.rank

    def granted_by(self) -> list[str]:
        """The roles that hold this privilege, least powerful first (for error messages)."""
        return [role.value for role in Role if role.grants(self)]


_RANKS = {Role.MONITOR: 0, Role.MANAGE: 1, Role.ADMIN: 2}


def parse_role(raw: object) -> Role:
    """A role from a request body; anything else is a 400 naming the known roles."""
    for role in Role:
        if raw == role.value:
            return role
    known = ", ".join(role.value for role in Role)
    raise IllegalArgumentError(f"unknown role [{raw}]; the roles are [{known}]")


@dataclass(frozen=True)
class Principal:
    """Who sent a request: a user (by password) or an API key acting for its owner."""

    username: str
    role: Role
    api_key_id: str | None = None
    api_key_name: str | None = None

    def describe(self) -> str:
        """As ES names the subject of a denied action."""
        if self.api_key_id is not None:
            return f"API key id [{self.api_key_id}] of user [{self.username}]"
        return f"user [{self.username}]"

    def task_headers(self) -> dict[str, str]:
        """The identity recorded in the headers of the tasks this caller starts."""
        headers = {"user.name": self.username, "user.roles": self.role.value}
        if self.api_key_id is not None:
            headers["api_key.id"] = self.api_key_id
            headers["api_key.name"] = self.api_key_name or ""
        return headers
