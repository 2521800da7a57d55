"""ytmp3.api.lean_route answers exactly as FastAPI's own route does: the same endpoint
behind both, every odd body and Content-Type, the same status and the same body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.exceptions import HTTPException

from ytmp3.api.lean_route import LeanRoute, _guards, _lean
from ytmp3.api.schemas import SubmitRequest

guarded: list[str] = []


async def endpoint(body: SubmitRequest, request: Request) -> Response:
    return JSONResponse({"body": body.model_dump(), "path": request.url.path})


async def guard(request: Request) -> None:
    guarded.append(request.url.path)
    if request.headers.get("x-refuse"):
        raise HTTPException(429, "refused")


async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    # every detail of every error, inputs included (as text: they may not be UTF-8)
    return JSONResponse({"errors": [{k: repr(v) for k, v in e.items()} for e in exc.errors()]})


def _app() -> FastAPI:
    app = FastAPI()
    app.add_exception_handler(RequestValidationError, on_invalid)  # type: ignore[arg-type]
    for prefix, route_class in (("/lean", LeanRoute), ("/standard", APIRoute)):
        app.router.add_api_route(
            f"{prefix}/plain", endpoint, methods=["POST"], route_class_override=route_class
        )
        app.router.add_api_route(
            f"{prefix}/guarded",
            endpoint,
            methods=["POST"],
            dependencies=[Depends(guard)],
            route_class_override=route_class,
        )
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def _both(
    client: httpx.AsyncClient, path: str, content: bytes, headers: dict[str, str]
) -> tuple[tuple[int, Any, list[str]], tuple[int, Any, list[str]]]:
    answers = []
    for prefix in ("/lean", "/standard"):
        guarded.clear()
        answer = await client.post(f"{prefix}/{path}", content=content, headers=headers)
        body = answer.json()
        if isinstance(body, dict) and "path" in body:
            body["path"] = body["path"].removeprefix(prefix)
        answers.append((answer.status_code, body, [p.removeprefix(prefix) for p in guarded]))
    return answers[0], answers[1]


BODIES = [
    b'{"video_url": "https://youtu.be/dQw4w9WgXcQ"}',
    b'{"video_url": "https://youtu.be/dQw4w9WgXcQ", "bitrate": 320, "extra": [1, 2]}',
    b'{"video_url": "x", "bitrate": "192"}',
    b'{"video_url": "x", "bitrate": 193}',
    b'{"video_url": "x", "bitrate": 192.0}',
    b'{"video_url": "x", "bitrate": true}',
    b'{"video_url": null}',
    b'{"video_url": 42}',
    b"{}",
    b"[]",
    b'"just a string"',
    b"null",
    b"42",
    b"{not json",
    b'{"video_url": "x", "bitrate": NaN}',
    b"\xef\xbb\xbf{}",
    b"\xff\xfe\x00garbage",
    "\udcff".encode("utf-8", "surrogatepass"),
    b'{"video_url": "' + b"\x00" * 10 + b'"}',
    b"",
]
CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    " application/json ",
    "application/vnd.api+json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application",
    "application/json/x",
    "",
]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("path", ["plain", "guarded"])
async def test_same_answers_as_fastapis_route(
    client: httpx.AsyncClient, path: str, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    for content in BODIES:
        lean, standard = await _both(client, path, content, headers)
        assert lean == standard, (content, content_type)


async def test_a_guard_runs_after_the_json_is_read_and_before_it_is_validated(
    client: httpx.AsyncClient,
) -> None:
    json_type = {"Content-Type": "application/json"}
    invalid_json = await _both(client, "guarded", b"{", json_type)
    invalid_field = await _both(client, "guarded", b'{"video_url": 1}', json_type)
    refused = await _both(client, "guarded", b"{}", {**json_type, "x-refuse": "1"})
    assert invalid_json[0] == invalid_json[1] and invalid_json[0][2] == []
    assert invalid_field[0] == invalid_field[1] and invalid_field[0][2] == ["/guarded"]
    assert refused[0] == refused[1] and refused[0][0] == 429


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.one_of(
        st.binary(max_size=64),
        st.builds(
            lambda d: __import__("json").dumps(d).encode(),
            st.dictionaries(
                st.sampled_from(["video_url", "bitrate", "other"]),
                st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
            ),
        ),
    ),
    content_type=st.one_of(st.sampled_from(CONTENT_TYPES), st.text(max_size=30)),
)
async def test_fuzzed_bodies_get_the_same_answers(
    client: httpx.AsyncClient, content: bytes, content_type: str | None
) -> None:
    try:
        headers = {} if content_type is None else {"Content-Type": content_type}
        httpx.Headers(headers)
    except (UnicodeEncodeError, ValueError):
        return  # not a header a client can send
    lean, standard = await _both(client, "guarded", content, headers)
    assert lean == standard


def test_routes_needing_more_keep_fastapis_handler() -> None:
    async def with_query(body: SubmitRequest, page: int) -> Response:
        return Response()

    async def returns_data(body: SubmitRequest) -> dict[str, str]:
        return {}

    async def named(request: Request) -> str:
        return ""

    async def with_value(body: SubmitRequest, who: str = Depends(named)) -> Response:
        return Response()

    def sync(body: SubmitRequest) -> Response:
        return Response()

    for call in (with_query, returns_data, with_value, sync):
        route = LeanRoute("/x", call, methods=["POST"])
        assert not (_lean(route) and _guards(route.dependant) is not None), call.__name__
    route = LeanRoute("/x", endpoint, methods=["POST"], dependencies=[Depends(guard)])
    assert _lean(route) and _guards(route.dependant) == [(guard, "request")]
