"""ytmp3 uses its web frameworks' public APIs only: no module imports a private name
(`_x`, or from a `_x` module) of FastAPI or Starlette, nor reads a private attribute of
what it imported from them (so a release within pyproject.toml's range can't break it).
(ARQ and redis-py are the worker's; add them to FRAMEWORKS once its code is public-only.)"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "ytmp3"
FRAMEWORKS = ("fastapi", "starlette")


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in dotted.split("."))


def private_uses(source: str) -> list[str]:
    found: list[str] = []
    bound: set[str] = set()  # names this module took from a framework
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FRAMEWORKS:
            module = node.module or ""
            for alias in node.names:
                bound.add(alias.asname or alias.name)
                if _private(f"{module}.{alias.name}"):
                    found.append(f"from {module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FRAMEWORKS:
                    bound.add((alias.asname or alias.name).split(".")[0])
                    if _private(alias.name):
                        found.append(f"import {alias.name}")
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
            and _private(node.attr)
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_module_uses_a_private_name_of_a_framework() -> None:
    offenders = {
        str(path.relative_to(SRC)): uses
        for path in sorted(SRC.rglob("*.py"))
        if (uses := private_uses(path.read_text()))
    }
    assert offenders == {}


def test_the_check_sees_each_kind_of_use() -> None:
    source = (
        "from fastapi.dependencies.utils import _embed\n"
        "from starlette._utils import thing\n"
        "import starlette._compat\n"
        "from fastapi import routing\n"
        "routing._IncludedRouter\n"
    )
    assert private_uses(source) == [
        "from fastapi.dependencies.utils import _embed",
        "from starlette._utils import thing",
        "import starlette._compat",
        "routing._IncludedRouter",
    ]
    assert private_uses("from fastapi import FastAPI\nFastAPI.__name__\n") == []
