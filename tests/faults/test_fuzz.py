"""Property-based fuzz of the API from its own OpenAPI document: no server error, ever."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
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
# what answers without a key when YTMP3_AUTH=keys (SPEC "Access")
OPEN_PATHS = {"/healthz", "/readyz", "/session"}


@dataclass(frozen=True)
class Served:
    base: str
    key: str | None = None  # set: YTMP3_AUTH=keys, and this key is good


def _serve(stand_in: StandIn, tmp: Path, *, auth: bool) -> Iterator[Served]:
    config = Settings(
        _env_file=None,
        media_dir=tmp / "media",
        thumbnail_url=stand_in.thumbnail_url,
        source_url=stand_in.source_url,
        rate_limit="0",
    )
    port = free_port()
    env = settings_env(config, port)
    key = None
    if auth:
        # many wrong tries on purpose: the brute-force limit is tested elsewhere
        env.update(YTMP3_AUTH="keys", YTMP3_DATA_DIR=str(tmp / "data"),
                   YTMP3_AUTH_FAIL_LIMIT="100000/minute")  # fmt: skip
        made = subprocess.run([sys.executable, "-m", "ytmp3", "keys", "add", "fuzz"],
                              env=env, capture_output=True, text=True, check=True)  # fmt: skip
        key = made.stdout.strip()
    with ytmp3_process("serve", env, tmp / "serve.log"):
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=2) as client:
            deadline = time.monotonic() + 30
            while not _up(client):
                if time.monotonic() > deadline:
                    raise AssertionError("ytmp3 serve did not start")
                time.sleep(0.05)
        yield Served(base, key)
    log = (tmp / "serve.log").read_text()
    assert "Traceback" not in log, log
    if key is not None:
        assert key not in log


@pytest.fixture(scope="module")
def base_url(
    stand_in_server: StandIn, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    yield from _serve(stand_in_server, tmp_path_factory.mktemp("fuzz"), auth=False)


@pytest.fixture(scope="module")
def keyed(stand_in_server: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(stand_in_server, tmp_path_factory.mktemp("fuzz-keys"), auth=True)


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
def test_no_server_errors(case: Case[Any], base_url: Served) -> None:
    _check(case, case.call(base_url=base_url.base, timeout=15))


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_with_auth_on_with_and_without_a_key(
    case: Case[Any], keyed: Served
) -> None:
    without = case.call(base_url=keyed.base, timeout=15)
    _check(case, without)
    # routing and FastAPI's body parsing answer first: an unknown path or method (404/405)
    # or a body that is not JSON (422) is refused the same with or without a key
    refused = without.status_code in (400, 401, 403, 404, 405, 413, 422)
    assert refused or case.path in OPEN_PATHS, (case.method, case.path, without.text)
    _check(case, case.call(base_url=keyed.base, timeout=15,
                           headers={"Authorization": f"Bearer {keyed.key}"}))  # fmt: skip


def _check(case: Case[Any], response: Any) -> None:
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
