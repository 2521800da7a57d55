"""Settings: SPEC defaults, YTMP3_* variables and .env, and one clear line for a bad value."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ytmp3.config import RateLimit, Settings, SettingsError, load_settings, parse_rate_limit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No YTMP3_* from the shell, and a cwd of our own (so no stray .env)."""
    for name in list(os.environ):
        if name.upper().startswith("YTMP3_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_are_the_spec_table() -> None:
    settings = load_settings()
    assert settings.redis_url is None
    assert settings.embedded
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.media_dir == Path("./media")
    assert settings.thumbnail_url == "https://img.youtube.com/vi/{video_id}/0.jpg"
    assert settings.source_url == "https://www.youtube.com/watch?v={video_id}"
    assert settings.ffmpeg is None
    assert settings.result_ttl == 3600
    assert settings.exists_ttl == 86400
    assert settings.missing_ttl == 3600
    assert settings.max_duration == 7200
    assert settings.job_timeout == 900
    assert settings.max_jobs == (os.cpu_count() or 1)
    assert settings.rate_limit == "30/minute"
    assert settings.rate == RateLimit(30, 60)
    assert settings.trusted_networks == ()


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("YTMP3_REDIS_URL", "redis://127.0.0.1:6379/3", "redis_url", "redis://127.0.0.1:6379/3"),
        (
            "YTMP3_REDIS_URL",
            "rediss://cache.internal:6380",
            "redis_url",
            "rediss://cache.internal:6380",
        ),
        ("YTMP3_REDIS_URL", "unix:///run/redis.sock", "redis_url", "unix:///run/redis.sock"),
        ("YTMP3_HOST", "0.0.0.0", "host", "0.0.0.0"),
        ("YTMP3_PORT", "9000", "port", 9000),
        ("YTMP3_MEDIA_DIR", "/srv/mp3", "media_dir", Path("/srv/mp3")),
        (
            "YTMP3_THUMBNAIL_URL",
            "http://127.0.0.1:9999/vi/{video_id}/0.jpg",
            "thumbnail_url",
            "http://127.0.0.1:9999/vi/{video_id}/0.jpg",
        ),
        (
            "YTMP3_SOURCE_URL",
            "http://127.0.0.1:9999/watch?v={video_id}",
            "source_url",
            "http://127.0.0.1:9999/watch?v={video_id}",
        ),
        ("YTMP3_RESULT_TTL", "60", "result_ttl", 60),
        ("YTMP3_EXISTS_TTL", "10", "exists_ttl", 10),
        ("YTMP3_MISSING_TTL", "5", "missing_ttl", 5),
        ("YTMP3_MAX_DURATION", "600", "max_duration", 600),
        ("YTMP3_JOB_TIMEOUT", "30", "job_timeout", 30),
        ("YTMP3_MAX_JOBS", "3", "max_jobs", 3),
        ("YTMP3_RATE_LIMIT", "5/second", "rate", RateLimit(5, 1)),
        ("YTMP3_RATE_LIMIT", "0", "rate", None),
        ("YTMP3_LOG_LEVEL", "DEBUG", "log_level", "DEBUG"),
        ("YTMP3_LOG_FORMAT", "json", "log_format", "json"),
    ],
)
def test_environment_variables(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) == expected


def test_redis_url_means_shared_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTMP3_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert not load_settings().embedded


def test_empty_redis_url_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTMP3_REDIS_URL", "")
    settings = load_settings()
    assert settings.redis_url is None
    assert settings.embedded


def test_ffmpeg_setting_must_be_an_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTMP3_FFMPEG", sys.executable)
    settings = load_settings()
    assert settings.ffmpeg == sys.executable
    assert settings.ffmpeg_path == sys.executable


def test_trusted_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTMP3_TRUSTED_PROXIES", " 10.0.0.0/8, 192.168.1.1 ,::1 ")
    assert load_settings().trusted_networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.1/32"),
        ipaddress.ip_network("::1/128"),
    )


def test_dotenv_in_the_working_directory(clean_env: Path) -> None:
    (clean_env / ".env").write_text(
        "# comment\nYTMP3_PORT=9100\nYTMP3_RATE_LIMIT=0\nUNRELATED=1\nPORT=1\n",
        encoding="utf-8",
    )
    settings = load_settings()
    assert settings.port == 9100
    assert settings.rate is None


def test_environment_beats_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("YTMP3_PORT=9100\nYTMP3_HOST=0.0.0.0\n", encoding="utf-8")
    monkeypatch.setenv("YTMP3_PORT", "9200")
    settings = load_settings()
    assert settings.port == 9200
    assert settings.host == "0.0.0.0"


def test_bad_value_in_dotenv_is_named(clean_env: Path) -> None:
    (clean_env / ".env").write_text("YTMP3_RESULT_TTL=forever\n", encoding="utf-8")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value).startswith("YTMP3_RESULT_TTL: ")


def test_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTMP3_PORT", "9000")
    assert load_settings(port=1234).port == 1234
    with pytest.raises(SettingsError, match=r"^YTMP3_PORT: "):
        load_settings(port=0)


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]


BAD = [
    ("YTMP3_PORT", "notaport"),
    ("YTMP3_PORT", "0"),
    ("YTMP3_PORT", "70000"),
    ("YTMP3_PORT", "-1"),
    ("YTMP3_RESULT_TTL", "0"),
    ("YTMP3_RESULT_TTL", "-5"),
    ("YTMP3_RESULT_TTL", "1h"),
    ("YTMP3_EXISTS_TTL", "abc"),
    ("YTMP3_MISSING_TTL", "0"),
    ("YTMP3_MAX_DURATION", "0"),
    ("YTMP3_MAX_DURATION", "2.5"),
    ("YTMP3_JOB_TIMEOUT", "soon"),
    ("YTMP3_MAX_JOBS", "0"),
    ("YTMP3_RATE_LIMIT", "30 per minute"),
    ("YTMP3_RATE_LIMIT", "30/week"),
    ("YTMP3_RATE_LIMIT", "-1/minute"),
    ("YTMP3_RATE_LIMIT", "lots"),
    ("YTMP3_REDIS_URL", "http://127.0.0.1:6379"),
    ("YTMP3_REDIS_URL", "localhost:6379"),
    ("YTMP3_THUMBNAIL_URL", "https://img.youtube.com/vi/0.jpg"),
    ("YTMP3_THUMBNAIL_URL", "ftp://img.example/{video_id}.jpg"),
    ("YTMP3_SOURCE_URL", "file:///videos/{video_id}"),
    ("YTMP3_SOURCE_URL", "https://www.youtube.com/watch"),
    ("YTMP3_FFMPEG", "/nonexistent/bin/ffmpeg"),
    ("YTMP3_TRUSTED_PROXIES", "10.0.0.0/8, nope"),
    ("YTMP3_LOG_LEVEL", "LOUD"),
    ("YTMP3_LOG_FORMAT", "xml"),
    ("YTMP3_PROBE_TIMEOUT", "0"),
]


@pytest.mark.parametrize(("variable", "value"), BAD)
def test_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    text = str(info.value)
    assert text.startswith(f"{variable}: ")
    assert len(text) > len(f"{variable}: ") + 3
    assert "\n" not in text
    assert "\r" not in text
    assert info.value.__cause__ is None  # nothing for a traceback to chain


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30/minute", RateLimit(30, 60)),
        ("1/second", RateLimit(1, 1)),
        ("100/hour", RateLimit(100, 3600)),
        ("5/day", RateLimit(5, 86400)),
        (" 10 / minute ", RateLimit(10, 60)),
        ("0", None),
        (" 0 ", None),
        ("0/minute", None),
    ],
)
def test_parse_rate_limit(text: str, expected: RateLimit | None) -> None:
    assert parse_rate_limit(text) == expected


@pytest.mark.parametrize(
    "text", ["", "30", "minute", "30/minutes", "30/min", "-1/minute", "1.5/minute", "30/", "/60"]
)
def test_parse_rate_limit_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_rate_limit(text)


def test_settings_class_reads_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "1111")
    monkeypatch.setenv("YTMP3_PORT", "2222")
    assert Settings().port == 2222


@pytest.mark.parametrize("where", ["environment", "dotenv"])
def test_cli_stops_with_one_line_on_a_bad_setting(tmp_path: Path, where: str) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("YTMP3_")}
    if where == "environment":
        env["YTMP3_PORT"] = "notaport"
    else:
        (tmp_path / ".env").write_text("YTMP3_PORT=notaport\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "ytmp3", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "YTMP3_PORT" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "media").exists()  # stopped before starting anything
