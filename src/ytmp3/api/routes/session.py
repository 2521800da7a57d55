"""The page's sign-in: GET /session (is a key needed, is this browser signed in),
POST /session (a key in, an HttpOnly session cookie out), DELETE /session (sign out)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ytmp3.access.sessions import SESSION_SECONDS, open_session
from ytmp3.api.auth import request_scheme, same_origin, unauthorized
from ytmp3.api.deps import ResourcesDep, client_of
from ytmp3.api.envelope import ApiError, envelope, error_doc
from ytmp3.config import Settings
from ytmp3.model.access import SESSION_COOKIE

router = APIRouter(tags=["access"])


class SignIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    key: str = Field(max_length=256)


class SessionData(BaseModel):
    auth: str
    signed_in: bool
    name: str | None


def _own_origin(request: Request, settings: Settings) -> None:
    if not same_origin(request, settings):
        raise ApiError(403, "CROSS_ORIGIN", "This request must come from the service's own page.")


@router.get("/session", summary="Whether a key is needed, and whether this browser has one")
async def session(request: Request, resources: ResourcesDep) -> JSONResponse:
    gate = resources.gate
    cookie = request.cookies.get(SESSION_COOKIE)
    record = await gate.session(cookie) if gate is not None and cookie else None
    data = SessionData(auth=resources.settings.auth, signed_in=record is not None,
                       name=record.name if record else None)  # fmt: skip
    return envelope(data, "Signed in." if record else "Not signed in.", "SESSION")


@router.post(
    "/session",
    summary="Sign in with a key (the page's session cookie)",
    responses={
        401: error_doc("Wrong or revoked key", "UNAUTHORIZED"),
        403: error_doc("Not from the service's own page", "CROSS_ORIGIN"),
        429: error_doc("Too many wrong keys from this address", "RATE_LIMITED"),
    },
)
async def sign_in(body: SignIn, request: Request, resources: ResourcesDep) -> JSONResponse:
    _own_origin(request, resources.settings)
    gate = resources.gate
    if gate is None:
        return envelope(SessionData(auth="off", signed_in=False, name=None),
                        "This service needs no key.", "SESSION")  # fmt: skip
    client = client_of(request, resources.settings)
    wait = await gate.blocked_for(client)
    if wait is not None:
        raise ApiError(429, "RATE_LIMITED",
                       f"Too many attempts with a wrong key. Please try again in {wait} seconds.",
                       headers={"Retry-After": str(wait)})  # fmt: skip
    record = await gate.key(body.key.strip())
    if record is None:
        await gate.failed(client)
        raise unauthorized("That key is not valid (wrong or revoked).")
    token = await open_session(resources.redis, record.digest)
    response = envelope(SessionData(auth="keys", signed_in=True, name=record.name),
                        "Signed in.", "SIGNED_IN")  # fmt: skip
    response.set_cookie(
        SESSION_COOKIE, token, max_age=SESSION_SECONDS, path="/", httponly=True,
        samesite="strict", secure=request_scheme(request, resources.settings) == "https",
    )  # fmt: skip
    return response


@router.delete("/session", summary="Sign out")
async def sign_out(request: Request, resources: ResourcesDep) -> JSONResponse:
    _own_origin(request, resources.settings)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and resources.gate is not None:
        await resources.gate.end_session(cookie)
    response = envelope(SessionData(auth=resources.settings.auth, signed_in=False, name=None),
                        "Signed out.", "SIGNED_OUT")  # fmt: skip
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
