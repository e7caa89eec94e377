"""Security: users and API keys with roles, checked on every REST request when enabled."""

from taskwarden.security.roles import Principal, Role, parse_role
from taskwarden.security.service import ADMIN_USER, CreatedApiKey, SecurityService, challenges_of

__all__ = [
    "ADMIN_USER",
    "CreatedApiKey",
    "Principal",
    "Role",
    "SecurityService",
    "challenges_of",
    "parse_role",
]
