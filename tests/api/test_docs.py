"""/docs and /redoc come from the service itself: pinned files, no CDN, a CSP that allows
only the service and the page's own inline script."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import app_client
from tests.stand_in import StandIn
from ytmp3.config import Settings

SettingsFactory = Callable[..., Settings]
VENDOR = Path(__file__).resolve().parents[2] / "src/ytmp3/api/static/vendor"
ASSET = re.compile(r'(?:src|href)="([^"]+)"')


def pinned() -> dict[str, str]:
    """The SHA-256 of each vendored file, as its README states them."""
    text = (VENDOR / "README.md").read_text()
    return {name: digest for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", text, re.M)}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_a_viewer_loads_nothing_from_elsewhere(
    make_settings: SettingsFactory, stand_in: StandIn, page: str
) -> None:
    async with app_client(make_settings()) as client:
        answer = await client.get(page)
        assets = ASSET.findall(answer.text)
        fetched = {url: await client.get(url) for url in assets}
        document = await client.get("/openapi.json")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert assets and all(url.startswith("/static/") for url in assets), assets
    assert "http://" not in answer.text and "https://" not in answer.text
    assert all(a.status_code == 200 and a.content for a in fetched.values())
    assert document.status_code == 200 and document.json()["info"]["title"] == "ytmp3"

    policy = answer.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in policy and "http" not in policy
    for script in re.findall(r"<script>(.*?)</script>", answer.text, re.S):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in directives["script-src"]  # the inline script, only


def test_the_vendored_files_are_the_pinned_ones() -> None:
    digests = pinned()
    assert len(digests) == 3
    for name, digest in digests.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
        assert (VENDOR / name).parent.joinpath("LICENSE").is_file()


async def test_the_bundles_are_served_with_their_versions_in_the_path(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings()) as client:
        script = await client.get("/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert (
        hashlib.sha256(script.content).hexdigest()
        == pinned()["swagger-ui-5.35.0/swagger-ui-bundle.js"]
    )
