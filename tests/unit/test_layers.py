"""Packages import downward only: the model at the bottom, the API free of worker code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ytmp3"

# Each layer may import its own and those below it, never those above.
LAYERS: dict[str, int] = {
    "model": 0,
    "config": 1,
    "logs": 2,
    "metrics": 2,
    "storage": 2,
    "cache": 3,
    "access": 4,
    "jobs": 5,
    "api": 5,
    "serve": 6,
    "client": 6,
    "cli": 7,
}


def _imports_of(path: Path) -> set[str]:
    """The ytmp3 modules `path` imports (at any depth of its code)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ytmp3"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ytmp3"))
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_top_level_piece_has_a_layer() -> None:
    pieces = {p.stem for p in SRC.iterdir() if p.suffix == ".py" or p.is_dir()}
    pieces -= {"__init__", "__main__", "__pycache__", "py"}
    assert pieces <= set(LAYERS), pieces - set(LAYERS)


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_a_module_imports_only_its_own_layer_or_those_below(path: Path) -> None:
    own = _layer("ytmp3." + ".".join(path.relative_to(SRC).with_suffix("").parts))
    if own is None:
        return  # ytmp3/__init__.py, __main__.py
    upward = {
        module
        for module in _imports_of(path)
        if (layer := _layer(module)) is not None and layer != own and LAYERS[layer] >= LAYERS[own]
    }
    assert not upward, f"{path.relative_to(SRC)} imports upward or sideways: {sorted(upward)}"


def test_the_model_imports_nothing_of_ytmp3_but_itself() -> None:
    for path in (SRC / "model").rglob("*.py"):
        others = {m for m in _imports_of(path) if not m.startswith("ytmp3.model")}
        assert not others, (path, others)


def test_importing_the_api_app_loads_no_worker_code() -> None:
    # (arq.worker is loaded by arq's own package, which the API needs to enqueue.)
    code = (
        "import sys, ytmp3.api.app; "
        "print(sorted(m for m in sys.modules if m.startswith(('ytmp3.jobs', 'mutagen', "
        "'yt_dlp', 'ytmp3.serve', 'deno', 'imageio_ffmpeg'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
