"""Making and checking secrets: scrypt for passwords (slow on purpose), SHA-256 for API keys.

An API key's secret is 32 random bytes, too many to guess, so a fast digest protects it as well
as a slow one would; a password may be weak, so its hash costs tens of milliseconds to check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "hash_api_key",
    "hash_password",
    "new_api_key",
    "verify_api_key",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 6  # ES's minimum for native users
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SCRYPT_PREFIX = "scrypt"


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64 parts) of ``password`` with a fresh salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return "$".join(
        (_SCRYPT_PREFIX, str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest))
    )


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` value; a malformed one never does."""
    try:
        prefix, n, r, p, salt, digest = stored.split("$")
        if prefix != _SCRYPT_PREFIX:
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def new_api_key() -> tuple[str, str]:
    """A fresh (id, secret) pair: the id is public, the secret is shown once."""
    return secrets.token_urlsafe(15), secrets.token_urlsafe(32)


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def verify_api_key(secret: str, stored: str) -> bool:
    return hmac.compare_digest(hash_api_key(secret), stored)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
