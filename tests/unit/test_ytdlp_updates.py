"""The pure parts of keeping yt-dlp up to date: settings, versions, which install is used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ytmp3.config import Settings, SettingsError, load_settings, parse_interval
from ytmp3.jobs.fetch import updates
from ytmp3.jobs.fetch.protocol import Ready, decode_answer, encode_answer


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("off", None), ("OFF", None), ("6h", 21600), ("1d", 86400), ("30m", 1800), ("45s", 45)],
)
def test_intervals(text: str, seconds: int | None) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "6", "h", "0h", "-1h", "6 hours", "1w", "on"])
def test_a_bad_interval_names_the_variable(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTMP3_YTDLP_UPDATE", text)
    with pytest.raises(SettingsError, match=r"^YTMP3_YTDLP_UPDATE: expected off or an interval"):
        load_settings(_env_file=None)


def test_defaults() -> None:
    settings = Settings(_env_file=None)
    assert settings.ytdlp_update_seconds is None  # off
    assert settings.data_dir == Path("./data")
    assert settings.ytdlp_index == "https://pypi.org/simple"


def test_the_index_is_a_url_or_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None, ytdlp_index=str(tmp_path)).ytdlp_index == str(tmp_path)
    monkeypatch.setenv("YTMP3_YTDLP_INDEX", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match=r"^YTMP3_YTDLP_INDEX: .* neither a URL nor a folder"):
        load_settings(_env_file=None)


def test_pip_is_asked_the_folder_alone_or_the_index(tmp_path: Path) -> None:
    wheels_only = ["--only-binary", ":all:"]  # no source archive's build code runs
    remote = updates.index_args("https://pypi.org/simple")
    assert remote == [*wheels_only, "--index-url", "https://pypi.org/simple"]
    local = updates.index_args(str(tmp_path))
    folder = ["--isolated", "--no-index", "--find-links", str(tmp_path.resolve())]
    assert local == [*wheels_only, *folder]


@pytest.mark.parametrize(
    ("older", "newer"),
    [("2026.10.21", "2026.10.26"), ("2026.9.30", "2026.10.1"), ("2026.10.26", "2026.10.26.1")],
)
def test_versions_compare_as_dates(older: str, newer: str) -> None:
    assert updates.version_key(older) < updates.version_key(newer)


def install(data_dir: Path, version: str, *, pinned: bool = False, ok: bool = True) -> None:
    path = updates.root(data_dir) / version
    path.mkdir(parents=True)
    if ok:
        (path / "ok").write_text("{}")
    pointer = {"yt_dlp": version, "ejs": "0.8.0", "path": str(path), "pinned": pinned}
    (updates.root(data_dir) / "current").write_text(json.dumps(pointer))


def test_no_install_means_the_environments(tmp_path: Path) -> None:
    assert updates.chosen(tmp_path, "2026.10.26") is None
    assert updates.download_path(tmp_path, None) == ()


def test_a_newer_install_wins_over_the_environment(tmp_path: Path) -> None:
    install(tmp_path, "2026.10.26")
    chosen = updates.chosen(tmp_path, "2026.10.21")
    assert chosen is not None and chosen.yt_dlp == "2026.10.26"
    assert updates.download_path(tmp_path, chosen) == (chosen.path,)


def test_an_older_install_gives_way_to_a_newer_environment_unless_pinned(tmp_path: Path) -> None:
    """A data volume kept across an image upgrade must not hold the image back."""
    install(tmp_path / "a", "2026.10.21")
    assert updates.chosen(tmp_path / "a", "2026.10.26") is None
    install(tmp_path / "b", "2026.10.21", pinned=True)  # `update-yt-dlp --version`
    pinned = updates.chosen(tmp_path / "b", "2026.10.26")
    assert pinned is not None and pinned.yt_dlp == "2026.10.21"


def test_an_install_that_never_passed_its_check_is_not_used(tmp_path: Path) -> None:
    install(tmp_path, "2026.10.26", ok=False)
    assert updates.current(tmp_path) is None


def test_the_plugins_folder_comes_after_the_install(tmp_path: Path) -> None:
    updates.plugins_dir(tmp_path).mkdir(parents=True)
    install(tmp_path, "2026.10.26")
    chosen = updates.chosen(tmp_path, None)
    assert chosen is not None
    plugins = str(updates.plugins_dir(tmp_path))
    assert updates.download_path(tmp_path, chosen) == (chosen.path, plugins)
    assert updates.download_path(tmp_path, None) == (plugins,)


def test_the_ready_message_round_trips() -> None:
    ready = Ready("2026.10.26", "/data/yt-dlp/2026.10.26", "0.8.0", ("bgutil:http 2.0.2",))
    assert decode_answer(encode_answer(ready)) == ready
