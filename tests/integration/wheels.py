"""Real, published wheels for the upgrade tests, downloaded with pip once into a cache
folder that outlives test runs (the only time a test run asks the package index)."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import IN_CI

CACHE = Path.home() / ".cache" / "ytmp3-tests" / "wheels"
# two recent releases that both pin the yt-dlp-ejs below
OLDER, NEWER = "2026.10.21", "2026.10.26"
EJS = "0.8.0"
BGUTIL = "2.0.2"  # bgutil-ytdlp-pot-provider: a PO-token provider plugin


def wheel(name: str, version: str) -> Path:
    """The cached wheel of `name==version`, downloaded first if need be."""
    found = CACHE / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    if not found.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
            "--disable-pip-version-check", "-d", str(CACHE), f"{name}=={version}",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not found.is_file():
            message = f"could not download {name}=={version}: {done.stderr.strip()[-300:]}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
    return found


def put(index: Path, *wheels: Path) -> None:
    """Make `wheels` available on the local index folder `index`."""
    index.mkdir(parents=True, exist_ok=True)
    for found in wheels:
        shutil.copy(found, index / found.name)


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def broken_release(source: Path, version: str, out_dir: Path) -> Path:
    """A copy of the yt-dlp wheel `source` that calls itself `version` and fails to import:
    what a bad release looks like from here."""
    with zipfile.ZipFile(source) as zin:
        old_info = next(
            n.split("/")[0] for n in zin.namelist() if n.endswith(".dist-info/METADATA")
        )
        new_info = f"yt_dlp-{version}.dist-info"
        files: dict[str, bytes] = {}
        for name in zin.namelist():
            data = zin.read(name)
            if name == "yt_dlp/__init__.py":
                data = b'raise ImportError("this release is broken on purpose")\n' + data
            if name == f"{old_info}/METADATA":
                old_version = old_info.removeprefix("yt_dlp-").removesuffix(".dist-info")
                data = data.replace(
                    f"Version: {old_version}".encode(), f"Version: {version}".encode(), 1
                )
            files[name.replace(old_info, new_info, 1)] = data
    record = f"{new_info}/RECORD"
    files[record] = (
        "".join(
            f"{name},{_digest(data)},{len(data)}\n"
            for name, data in files.items()
            if name != record
        ).encode()
        + f"{record},,\n".encode()
    )
    out = out_dir / f"yt_dlp-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in files.items():
            zout.writestr(name, data)
    return out
