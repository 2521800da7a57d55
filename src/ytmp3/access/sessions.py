"""The page's sign-in sessions: a random token in an HttpOnly cookie; its digest in the
store names (by digest) the key that opened it. A cookie is only as good as its entry:
one forged, or made by another instance (another store), names nothing; revoking the key
ends its sessions, which are checked against the key on every use."""

from __future__ import annotations

from redis.asyncio import Redis

from ytmp3.model.access import digest, new_session_token

SESSION_SECONDS = 30 * 86400


def session_key(token_digest: str) -> str:
    return f"ytmp3:session:{token_digest}"


async def open_session(redis: Redis, key_digest: str) -> str:
    token = new_session_token()
    await redis.set(session_key(digest(token)), key_digest, ex=SESSION_SECONDS)
    return token


async def session_owner(redis: Redis, token: str) -> str | None:
    """The digest of the key that opened this session, if it is still open."""
    owner = await redis.get(session_key(digest(token)))
    return None if owner is None else owner.decode()


async def close_session(redis: Redis, token: str) -> None:
    await redis.delete(session_key(digest(token)))
