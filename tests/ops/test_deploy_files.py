"""compose.yaml, the Dockerfile and .dockerignore: they parse and name what they must.

scripts/test-image builds the image and runs the stack (CI runs it beside this suite);
these check in a second what needs no engine: the structure, and that every setting and
command the files use is one ytmp3 accepts.
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


class _ComposeLoader(yaml.SafeLoader):
    """Compose's merge tags (`!override`, `!reset`) read as the plain value they carry."""


def _plain(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    assert isinstance(node, yaml.ScalarNode)
    return loader.construct_scalar(node)


for _tag in ("!override", "!reset"):
    _ComposeLoader.add_constructor(_tag, _plain)


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(path.read_text(), Loader=_ComposeLoader)
    return loaded


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(ROOT / "compose.yaml")


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
    probe = api["healthcheck"]["test"]
    # python3: the virtualenv's, and the only name a base of Debian's python3 has
    assert probe[:3] == ["CMD", "python3", "-c"], probe
    assert f"127.0.0.1:{api['environment']['YTMP3_PORT']}/healthz" in probe[3]
    compile(probe[3], "healthcheck", "exec")
    assert any(p.endswith(f":{api['environment']['YTMP3_PORT']}") for p in api["ports"])
    worker = compose["services"]["worker"]["healthcheck"]["test"]
    assert worker[1] == "ytmp3"
    args = _parser().parse_args(worker[2:])
    assert args.command == "worker" and args.check


def test_the_image_test_override_names_real_services_and_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/test/compose.yaml, which scripts/test-image lays over compose.yaml."""
    from ytmp3.config import Settings

    override = _load(ROOT / "deploy" / "test" / "compose.yaml")
    assert set(override["services"]) <= set(compose["services"])
    assert override["services"]["worker"]["deploy"]["replicas"] == 2
    for role in ROLES:
        service = override["services"][role]
        assert set(service["build"]["args"]) == {"BASE", "WHEELS"}  # ARGs of the Dockerfile
        for name, value in service["environment"].items():
            assert name.removeprefix("YTMP3_").lower() in Settings.model_fields, name
            monkeypatch.setenv(name, value.replace("${YTMP3_TEST_STAND_IN:?}", "http://h:1"))
        load_settings()


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
    args = [a for word, a in steps if word == "ARG"]
    # the base names its Debian release (the bare -slim tag moves), overridable
    base = next(a.partition("=")[2] for a in args if a.startswith("BASE="))
    assert re.fullmatch(r"python:3\.1[1-9]-slim-(bookworm|trixie|forky)", base), base
    stages = [a for word, a in steps if word == "FROM"]
    assert stages == ["${BASE} AS build", "${BASE}"], "multi-stage, both on the one base"
    runs = " ".join(a for word, a in steps if word == "RUN")
    # one ffmpeg: imageio-ffmpeg's, a dependency (Debian's package was ~665 MB more)
    assert "apt-get" not in runs
    pyproject = (ROOT / "pyproject.toml").read_text()
    for package in ("imageio-ffmpeg", "deno"):  # the converter; the JavaScript runtime
        assert re.search(rf'^\s*"{package}>=', pyproject, re.M), package
    # the project, from its source, with the bucket's client (one image for many hosts)
    assert re.search(r"pip install \"\$@\" \"\.\[s3\]\"", runs)
    assert 'set -- --no-index --find-links "$WHEELS"' in runs  # the offline build
    assert any(word == "COPY" and a.startswith("--from=build ") for word, a in steps)
    users = [a for word, a in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0"), "runs as a user of its own"
    env = " ".join(a for word, a in steps if word == "ENV")
    assert "YTMP3_DATA_DIR=/data" in env and "YTMP3_MEDIA_DIR=/data/media" in env
    assert ("VOLUME", "/data") in steps
    assert any(word == "ENTRYPOINT" and "ytmp3" in a for word, a in steps)
    assert ("EXPOSE", "8080") in steps


def _in_context(path: str, rules: list[tuple[bool, str]]) -> bool:
    """Whether .dockerignore lets a path into the build context: the last rule that
    matches it or one of its folders decides (`!` lets in)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for let_in, pattern in rules:
        patterns = [pattern, pattern.removeprefix("**/")]
        if any(fnmatch.fnmatch(p, pat) for p in prefixes for pat in patterns):
            included = let_in
    return included


def test_dockerignore_lets_in_only_what_the_image_is_built_from() -> None:
    rules = [
        (line.startswith("!"), line.removeprefix("!"))
        for line in map(str.strip, (ROOT / ".dockerignore").read_text().splitlines())
        if line and not line.startswith("#")
    ]
    copied = [
        source
        for word, args in _dockerfile()
        if word == "COPY" and not args.startswith("--from")
        for source in shlex.split(args)[:-1]
    ]
    assert copied == ["."]  # the context, as .dockerignore leaves it
    sources = [p.relative_to(ROOT).as_posix() for p in (ROOT / "src" / "ytmp3").rglob("*.py")]
    for needed in ("pyproject.toml", "README.md", "build/wheels/x.whl", *sources):
        assert _in_context(needed, rules), needed
    for kept_out in (
        ".git/HEAD", ".venv/bin/python", ".env", "media/x.mp3", "tests/conftest.py",
        "bench/run", "scripts/test", "test-artifacts/x", "build/lib/ytmp3/cli.py",
        "src/ytmp3/__pycache__/cli.cpython-311.pyc", "src/ytmp3.egg-info/PKG-INFO",
    ):  # fmt: skip
        assert not _in_context(kept_out, rules), kept_out
