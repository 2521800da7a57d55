"""compose.yaml, the Dockerfile and .dockerignore: they parse and name what they must.

No Docker engine runs here, so none of this is built or started (the README says so);
what can be checked without one is checked: the structure, and that every setting and
command they use is one ytmp3 accepts.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from ytmp3.cli import _parser
from ytmp3.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def _seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text))


def _named_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Volume name -> path in the container, for the short `name:/path` syntax."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, _, target = str(entry).partition(":")
        mounts[source] = target.split(":")[0]
    return mounts


def test_compose_has_redis_with_a_data_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:")
    mounts = _named_mounts(redis)
    assert mounts.get("redis-data") == "/data"
    assert "redis-data" in compose["volumes"]
    assert "--appendonly" in redis["command"]  # the data on that volume is written there
    assert "ping" in redis["healthcheck"]["test"]


@pytest.mark.parametrize("role", ROLES)
def test_api_and_workers_share_redis_and_one_media_volume(
    compose: dict[str, Any], role: str
) -> None:
    service = compose["services"][role]
    env = service["environment"]
    assert urlparse(env["YTMP3_REDIS_URL"]).hostname == "redis"
    mounts = _named_mounts(service)
    assert mounts.get("media") == env["YTMP3_MEDIA_DIR"], "MP3s written where they are served"
    assert "media" in compose["volumes"]
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert service["build"] == "."
    assert service["command"] == [role]
    assert "healthcheck" in service and service["healthcheck"]["test"][0] == "CMD"


def test_workers_are_replicated(compose: dict[str, Any]) -> None:
    assert compose["services"]["worker"]["deploy"]["replicas"] >= 2


@pytest.mark.parametrize("role", ROLES)
def test_every_setting_in_compose_is_valid(
    compose: dict[str, Any], role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each YTMP3_* is a setting ytmp3 has (a typo would be silently ignored) and parses."""
    from ytmp3.config import Settings

    env = compose["services"][role]["environment"]
    for name, value in env.items():
        assert name.startswith("YTMP3_"), name
        assert name.removeprefix("YTMP3_").lower() in Settings.model_fields, name
        monkeypatch.setenv(name, str(value))
    settings = load_settings()
    assert not settings.embedded


@pytest.mark.parametrize("role", ROLES)
def test_docker_does_not_cut_the_grace_short(compose: dict[str, Any], role: str) -> None:
    service = compose["services"][role]
    grace = int(service["environment"]["YTMP3_STOP_GRACE"])
    assert _seconds(service["stop_grace_period"]) > grace
    assert service["init"] is True  # reaps the conversions' helper processes


def test_health_checks_name_real_commands(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    probe = " ".join(api["healthcheck"]["test"])
    assert f"127.0.0.1:{api['environment']['YTMP3_PORT']}/healthz" in probe
    assert any(p.endswith(f":{api['environment']['YTMP3_PORT']}") for p in api["ports"])
    worker = compose["services"]["worker"]["healthcheck"]["test"]
    assert worker[1] == "ytmp3"
    args = _parser().parse_args(worker[2:])
    assert args.command == "worker" and args.check


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile() -> None:
    steps = _dockerfile()
    base = [args for word, args in steps if word == "FROM"]
    assert len(base) == 1 and re.fullmatch(r"python:3\.(1[1-9])-slim(-\w+)?", base[0]), base
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert re.search(r"apt-get install[^&]*\bffmpeg\b", runs), "ffmpeg from Debian"
    assert "pip install ." in runs  # the project's dependencies, deno (the JS runtime) among them
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^\s*"deno>=', pyproject, re.M)
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0"), "runs as a user of its own"
    assert any(word == "ENTRYPOINT" and "ytmp3" in args for word, args in steps)
    assert ("EXPOSE", "8080") in steps


def test_dockerignore_keeps_what_the_image_copies() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for must in (".git", ".venv", "media"):
        assert must in ignored
    copied = [
        source
        for word, args in _dockerfile()
        if word == "COPY"
        for source in shlex.split(args)[:-1]
    ]
    assert copied
    for source in copied:
        assert not any(fnmatch.fnmatch(source.rstrip("/"), pattern) for pattern in ignored)
        assert (ROOT / source).exists(), source
