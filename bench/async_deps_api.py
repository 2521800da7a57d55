"""An experiment for the profile: `ytmp3 api` with its sync dependencies swapped for async twins.

FastAPI runs a plain `def` dependency in a worker thread (anyio's thread pool), one hop
per dependency per request. ytmp3's dependencies (ytmp3/api/deps.py) only read
`request.app.state`, so async twins that do the same are a fair stand-in for the change
the profile recommends. Served exactly as `ytmp3 api` is. `python -m bench.async_deps_api`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request

from bench.bare_app import serve_as_ytmp3_api
from ytmp3.api import deps
from ytmp3.api.app import create_app
from ytmp3.config import Settings


def _async_twin(sync: Callable[..., Any]) -> Callable[..., Any]:
    async def twin(request: Request) -> Any:
        return sync(request)

    twin.__signature__ = inspect.signature(sync)  # type: ignore[attr-defined]
    return twin


def sync_dependencies() -> list[Callable[..., Any]]:
    """The plain `def` functions ytmp3/api/deps.py hands to Depends (its *Dep aliases)."""
    found: list[Callable[..., Any]] = []
    for value in vars(deps).values():
        for meta in getattr(value, "__metadata__", ()):
            call = getattr(meta, "dependency", None)
            if call is not None and not inspect.iscoroutinefunction(call) and call not in found:
                found.append(call)
    return found


def factory(settings: Settings, **kw: Any) -> FastAPI:
    app = create_app(settings, **kw)
    for call in sync_dependencies():
        app.dependency_overrides[call] = _async_twin(call)
    return app


def main() -> int:
    return serve_as_ytmp3_api(factory)


if __name__ == "__main__":
    raise SystemExit(main())
