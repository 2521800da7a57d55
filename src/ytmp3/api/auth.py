"""YTMP3_AUTH=keys: every route but the SPEC's exceptions asks who is calling.

A bearer key (`Authorization: Bearer KEY`) or the page's session cookie. Missing or
wrong: 401 UNAUTHORIZED with `WWW-Authenticate: Bearer`; an address that failed too often
gets 429 before its key is even looked at. A request that changes something on the
strength of a cookie alone must come from the service's own origin (a cookie is sent by
the browser whoever wrote the page that asks: CSRF).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from ytmp3.access.gate import Caller
from ytmp3.api.client_address import trusted_peer
from ytmp3.api.deps import ResourcesDep, client_of
from ytmp3.api.envelope import ApiError
from ytmp3.config import Settings
from ytmp3.model.access import SESSION_COOKIE, bearer

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Shown in /docs (ytmp3.api.app adds it to the document): Swagger UI's "Authorize" button
# takes a key. Not FastAPI's HTTPBearer dependency: a dependency more per request cost the
# keyed cache-hit submit a measured share of its throughput.
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key from `ytmp3 keys add NAME`.",
}


def unauthorized(message: str) -> ApiError:
    return ApiError(
        401, "UNAUTHORIZED", message, headers={"WWW-Authenticate": 'Bearer realm="ytmp3"'}
    )


def request_scheme(request: Request, settings: Settings) -> str:
    """https when the request came over it, directly or through a trusted proxy."""
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-proto")
    if forwarded and trusted_peer(peer, settings.trusted_networks):
        return forwarded.split(",")[0].strip().lower()
    return request.url.scheme


def same_origin(request: Request, settings: Settings) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return False
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return parts.netloc == host and parts.scheme == request_scheme(request, settings)


async def require_access(
    request: Request,
    resources: ResourcesDep,
) -> Caller | None:
    """The protected routers' guard (YTMP3_AUTH=keys only): the caller, kept for the route
    in `request.state`; raises 401/429/403 otherwise."""
    gate = resources.gate
    if gate is None:
        return None
    client = client_of(request, resources.settings)
    wait = await gate.blocked_for(client)
    if wait is not None:
        raise ApiError(
            429,
            "RATE_LIMITED",
            f"Too many attempts with a wrong key. Please try again in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )
    header = request.headers.get("authorization")
    cookie = request.cookies.get(SESSION_COOKIE)
    if header is not None:
        token = bearer(header)
        record = await gate.key(token) if token is not None else None
        by_cookie = False
    elif cookie:
        record = await gate.session(cookie)
        by_cookie = True
    else:
        raise unauthorized("This service needs an API key: send `Authorization: Bearer KEY`.")
    if record is None:
        await gate.failed(client)
        raise unauthorized("That key or session is not valid (wrong, revoked or expired).")
    if (
        by_cookie
        and request.method not in SAFE_METHODS
        and not same_origin(request, resources.settings)
    ):
        raise ApiError(403, "CROSS_ORIGIN", "This request must come from the service's own page.")
    caller = Caller(record, by_cookie)
    request.state.caller = caller
    return caller


def caller_of(request: Request) -> Caller | None:
    """Who the guard let in, for a route that counts per key; None with auth off (no guard
    then: a dependency less on every request)."""
    caller: Caller | None = getattr(request.state, "caller", None)
    return caller


async def _caller(request: Request) -> Caller | None:
    return caller_of(request)


CallerDep = Annotated[Caller | None, Depends(_caller)]
