"""Property-based fuzz of the API from its own OpenAPI document: no server error, ever."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, GenerationMode

from tests.integration.helpers import free_port, settings_env, ytmp3_process
from tests.stand_in import StandIn
from ytmp3.api.app import create_app
from ytmp3.config import Settings

pytestmark = pytest.mark.slow

# GET /readyz may honestly say 503 (no worker beat yet); every other 5xx is a bug.
ALLOWED_5XX = {("GET", "/readyz"): {503}}


@pytest.fixture(scope="module")
def base_url(stand_in_server: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("fuzz")
    config = Settings(
        _env_file=None,
        media_dir=tmp / "media",
        thumbnail_url=stand_in_server.thumbnail_url,
        source_url=stand_in_server.source_url,
        rate_limit="0",
    )
    port = free_port()
    with ytmp3_process("serve", settings_env(config, port), tmp / "serve.log"):
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=2) as client:
            deadline = time.monotonic() + 30
            while not _up(client):
                if time.monotonic() > deadline:
                    raise AssertionError("ytmp3 serve did not start")
                time.sleep(0.05)
        yield base
    log = (tmp / "serve.log").read_text()
    assert "Traceback" not in log, log


def _up(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


# The document the app itself serves (it needs no running app to be made).
schema = schemathesis.openapi.from_dict(create_app(Settings(_env_file=None)).openapi())
# Bodies and paths that break the schema too, not only ones that follow it.
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Case[Any], base_url: str) -> None:
    response = case.call(base_url=base_url, timeout=15)
    allowed = ALLOWED_5XX.get((case.method.upper(), case.path), set())
    assert response.status_code < 500 or response.status_code in allowed, (
        case.method,
        case.formatted_path,
        case.body,
        response.status_code,
        response.text[:300],
    )
    content_type = response.headers.get("content-type") or [""]
    if case.method.upper() != "HEAD" and content_type[0].startswith("application/json"):
        body = response.json()
        assert set(body) == {"data", "message", "message_code", "error_fields"}, body
