"""API keys and sessions: how they look, how they are stored, how a request names one. Pure.

A key is shown once, when made; only its SHA-256 is kept. A plain fast hash is enough:
a key carries 256 random bits, so there is nothing to guess from a stolen hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "ytmp3_"  # tells a key apart from a password in a leaked file
KEY_RE = re.compile(r"\Aytmp3_[A-Za-z0-9_-]{43}\Z")
NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
SESSION_COOKIE = "ytmp3_session"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is stored of a key or a session token."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def well_formed(key: str) -> bool:
    return KEY_RE.match(key) is not None


def valid_name(name: str) -> bool:
    return NAME_RE.match(name) is not None


def bearer(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer TOKEN`, or None for anything else."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What is kept of a key: never the key itself."""

    name: str
    digest: str
    created: float
    rate: str | None = None  # "N/period": replaces the per-address limit for its holder
    revoked: float | None = None


@dataclass(frozen=True, slots=True)
class KeyUse:
    last_used: float | None = None
    submissions: int = 0
    conversions: int = 0
    bytes_served: int = 0
