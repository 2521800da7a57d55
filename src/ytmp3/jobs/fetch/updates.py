"""Newer yt-dlp releases, installed beside the running one and checked before use.

Everything lives in `YTMP3_DATA_DIR/yt-dlp/`, shared by the workers of one host:

    lock            held (fcntl) while one of them looks at the index or installs
    checked         its mtime: when the index was last asked (by any of them)
    current         which install the workers use: JSON {"yt_dlp", "ejs", "path", "pinned"}
    <version>/      one install: yt-dlp and the yt-dlp-ejs it pins (pip --target), and a
                    file `ok` once it loaded in a Python of its own
    <version>.refused   a release that did not load, with why (not tried again by itself)
    plugins/        yt-dlp plugins the operator installed here (pip install --target)

Nothing is installed into the running environment. A worker moves its downloads to the
`current` install between jobs (kept.py); the environment's yt-dlp is used until an
install newer than it exists, or one is pinned (`ytmp3 update-yt-dlp --version V`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from ytmp3.jobs.fetch.client import FetchServerError, check
from ytmp3.jobs.fetch.protocol import Options

log = logging.getLogger(__name__)

PIP_TIMEOUT = 300.0  # seconds for one pip run: a slow index, a 3 MB wheel
LOCK_POLL = 0.2  # seconds between two tries at the host's lock
KEEP = 3  # installs kept besides the current one: a worker may still finish jobs on them
_EJS_PIN = re.compile(r"^yt-dlp-ejs\s*(?P<spec>[^;]*?)\s*;.*extra\s*==\s*['\"]default['\"]")


class UpdateError(Exception):
    """The index could not be read or the release not installed (said in words)."""


@dataclass(frozen=True)
class Install:
    """One yt-dlp installed into the data directory."""

    yt_dlp: str
    ejs: str | None
    path: str
    pinned: bool = False


@dataclass(frozen=True)
class Outcome:
    """What one look at the index did, in a sentence for the log and the command line."""

    changed: bool
    message: str
    install: Install | None = None
    refused: bool = False


def root(data_dir: Path) -> Path:
    return data_dir.absolute() / "yt-dlp"  # the workers of a host may differ in their cwd


def plugins_dir(data_dir: Path) -> Path:
    return root(data_dir) / "plugins"


def version_key(version: str) -> tuple[int, ...]:
    """yt-dlp's versions are dates, "2026.10.26" (nightlies add ".123456"): in order."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def environment_version() -> str | None:
    """The yt-dlp installed with ytmp3, read without importing it (the worker never does)."""
    try:
        return metadata.version("yt-dlp")
    except metadata.PackageNotFoundError:
        return None


def current(data_dir: Path) -> Install | None:
    """The install `current` points at, if it is there and was checked."""
    try:
        data = json.loads((root(data_dir) / "current").read_text())
        install = Install(**data)
    except (OSError, ValueError, TypeError):
        return None
    return install if (Path(install.path) / "ok").is_file() else None


def chosen(data_dir: Path, env_version: str | None) -> Install | None:
    """The install downloads should use; None: the environment's yt-dlp."""
    install = current(data_dir)
    if install is None:
        return None
    if install.pinned or env_version is None:
        return install
    return install if version_key(install.yt_dlp) > version_key(env_version) else None


def download_path(data_dir: Path, install: Install | None) -> tuple[str, ...]:
    """What goes first on a download's sys.path: the install, then the plugins folder."""
    path = [install.path] if install else []
    if plugins_dir(data_dir).is_dir():
        path.append(str(plugins_dir(data_dir)))
    return tuple(path)


def index_args(index: str) -> list[str]:
    """pip's options for `YTMP3_YTDLP_INDEX`: a folder of wheels, or an index's URL.
    Wheels only: a source archive would run its build code here."""
    if "://" in index:
        return ["--only-binary", ":all:", "--index-url", index]
    # a local folder: nothing else is asked (no pip configuration, no other index)
    local = ["--isolated", "--no-index", "--find-links", str(Path(index).resolve())]
    return ["--only-binary", ":all:", *local]


@contextlib.asynccontextmanager
async def _locked(data_dir: Path) -> AsyncIterator[None]:
    """The host-wide lock: one worker (or `ytmp3 update-yt-dlp`) at a time installs.
    Waited for without blocking the event loop, and never taken after a cancel."""
    root(data_dir).mkdir(parents=True, exist_ok=True)
    with (root(data_dir) / "lock").open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(LOCK_POLL)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def _finish(process: asyncio.subprocess.Process, timeout: float) -> tuple[bytes, bytes]:
    """Its output once it ends; killed if it takes over `timeout` or we are cancelled."""
    try:
        return await asyncio.wait_for(process.communicate(), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.shield(process.wait())
        raise


async def _pip(*args: str) -> str:
    """`python -m pip ARGS`; its output, or UpdateError with pip's last words."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = await _finish(process, PIP_TIMEOUT)
    except TimeoutError:
        raise UpdateError(f"pip took over {PIP_TIMEOUT:g} s") from None
    if process.returncode != 0:
        said = [
            line
            for line in err.decode("utf-8", "replace").splitlines()
            if line.strip() and not line.startswith("WARNING")
        ]
        raise UpdateError(f"pip failed: {(said or ['no reason given'])[-1].strip()[-300:]}")
    return out.decode("utf-8", "replace")


async def newest(index: str, version: str | None = None) -> tuple[str, str]:
    """The newest yt-dlp on the index (or `version`), and the yt-dlp-ejs it pins, as a
    pip requirement. Nothing is downloaded but the release's metadata."""
    with tempfile.TemporaryDirectory(prefix="ytmp3-pip-") as tmp:
        report = Path(tmp) / "report.json"
        await _pip(
            "install", "--dry-run", "--ignore-installed", "--no-deps", "--quiet",
            "--report", str(report), *index_args(index),
            f"yt-dlp=={version}" if version else "yt-dlp",
        )  # fmt: skip
        try:
            found = json.loads(report.read_text())["install"][0]["metadata"]
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise UpdateError(f"pip's report names no yt-dlp: {exc}") from exc
    ejs = "yt-dlp-ejs"
    for requirement in found.get("requires_dist") or []:
        if match := _EJS_PIN.match(requirement):
            ejs += match.group("spec").replace(" ", "")
    return str(found["version"]), ejs


def _installed_ejs(path: Path) -> str | None:
    for dist in path.glob("yt_dlp_ejs-*.dist-info"):
        return dist.name.removeprefix("yt_dlp_ejs-").removesuffix(".dist-info")
    return None


async def install(data_dir: Path, index: str, version: str, ejs: str, options: Options) -> Install:
    """Install yt-dlp `version` and `ejs` into their own folder, then load them in a Python
    of their own; raises UpdateError (and remembers the refusal) if they do not load."""
    target = root(data_dir) / version
    refused = root(data_dir) / f"{version}.refused"
    if (target / "ok").is_file():
        return Install(version, _installed_ejs(target), str(target))
    shutil.rmtree(target, ignore_errors=True)  # a try cut short
    await _pip(
        "install", "--target", str(target), "--no-deps", "--quiet", "--upgrade",
        # compiled as imported (by the check, first): a download needs few of its modules
        "--no-compile",
        *index_args(index), f"yt-dlp=={version}", ejs,
    )  # fmt: skip
    try:
        ready = await check(options, download_path(data_dir, Install(version, None, str(target))))
        if Path(ready.location).resolve() != target.resolve():
            raise FetchServerError(f"yt-dlp was loaded from {ready.location}, not {target}")
        if ready.yt_dlp != version:
            raise FetchServerError(f"it calls itself yt-dlp {ready.yt_dlp}, not {version}")
    except FetchServerError as exc:
        shutil.rmtree(target, ignore_errors=True)
        refused.write_text(f"{exc}\n")
        raise UpdateError(f"yt-dlp {version} was not switched to: {exc}") from exc
    (target / "ok").write_text(f"{ready.to_json()}\n")
    refused.unlink(missing_ok=True)
    return Install(version, ready.ejs or _installed_ejs(target), str(target))


def _point(data_dir: Path, install: Install) -> None:
    """Make `install` current, at once for every reader (a rename)."""
    pointer = root(data_dir) / "current"
    tmp = pointer.with_name(f".current-{os.getpid()}")
    tmp.write_text(json.dumps(asdict(install)) + "\n")
    os.replace(tmp, pointer)


def _prune(data_dir: Path, keep: Install) -> None:
    """Old installs go, all but the KEEP newest: a worker moves off one within a job."""
    installs = sorted(
        (p for p in root(data_dir).iterdir() if (p / "ok").is_file() and p.name != "plugins"),
        key=lambda p: version_key(p.name),
        reverse=True,
    )
    for path in installs[KEEP + 1 :]:
        if path.resolve() != Path(keep.path).resolve():
            shutil.rmtree(path, ignore_errors=True)


async def update(
    data_dir: Path,
    index: str,
    options: Options,
    *,
    version: str | None = None,
    every: float | None = None,
) -> Outcome:
    """Install the newest yt-dlp (or `version`, pinned) if it is newer than the one in
    use, and make it current. `every`: a worker's periodic look, skipped when another
    worker of this host looked less than that long ago."""
    async with _locked(data_dir):
        return await _update(data_dir, index, options, version, every)


async def _update(
    data_dir: Path, index: str, options: Options, version: str | None, every: float | None
) -> Outcome:
    checked = root(data_dir) / "checked"
    env_version = environment_version()
    in_use = chosen(data_dir, env_version)
    running = in_use.yt_dlp if in_use else (env_version or "0")
    if every is not None and version is None:
        with contextlib.suppress(OSError):
            if time.time() - checked.stat().st_mtime < every * 0.9:
                return Outcome(False, f"yt-dlp {running}: this host looked at the index lately")
    found, ejs = await newest(index, version)
    checked.touch()
    if version is None and version_key(found) <= version_key(running):
        return Outcome(False, f"yt-dlp {running} in use; the index's newest is {found}", in_use)
    refused = root(data_dir) / f"{found}.refused"
    if version is None and refused.is_file():
        why = refused.read_text().strip()
        message = f"yt-dlp {found} was refused before ({why}); staying on {running}"
        return Outcome(False, message, in_use, refused=True)
    try:
        new = await install(data_dir, index, found, ejs, options)
    except UpdateError as exc:
        return Outcome(False, f"{exc}; staying on yt-dlp {running}", in_use, refused=True)
    new = Install(new.yt_dlp, new.ejs, new.path, pinned=version is not None)
    _point(data_dir, new)
    _prune(data_dir, new)
    return Outcome(True, f"yt-dlp {new.yt_dlp} (yt-dlp-ejs {new.ejs}) installed and current", new)
