"""`ytmp3 api` with pyinstrument around every POST /submit, for the profile (not the figures).

`python -m bench.profiled_api OUT.txt COUNT` is `ytmp3 api` (same YTMP3_* environment,
same uvicorn and logging set-up) with its app wrapped: each /submit is profiled in async
mode, so time spent awaiting Redis is charged to the line that awaits it. After COUNT
requests the sessions are combined and written to OUT.txt as text.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pyinstrument import Profiler
from pyinstrument.renderers import ConsoleRenderer
from pyinstrument.session import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.bare_app import serve_as_ytmp3_api
from ytmp3.api.app import create_app
from ytmp3.config import Settings


def _write(out: Path, sessions: list[Session]) -> None:
    combined = sessions[0]
    for session in sessions[1:]:
        combined = Session.combine(combined, session)
    renderer = ConsoleRenderer(unicode=True, color=False, show_all=False, short_mode=False)
    flat = ConsoleRenderer(unicode=True, color=False, flat=True, show_all=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(
        f"{len(sessions)} requests profiled\n{renderer.render(combined)}\n"
        f"Flat, self time, every frame:\n{flat.render(combined)}"
    )
    tmp.replace(out)


def main(argv: list[str]) -> int:
    out, count = Path(argv[1]), int(argv[2])
    sessions: list[Session] = []

    def factory(settings: Settings, **kw: Any) -> ASGIApp:
        inner = create_app(settings, **kw)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["path"] != "/submit" or len(sessions) >= count:
                await inner(scope, receive, send)
                return
            profiler = Profiler(interval=0.0001, async_mode="enabled")
            profiler.start()
            try:
                await inner(scope, receive, send)
            finally:
                sessions.append(profiler.stop())
                if len(sessions) == count:  # uvicorn ends on SIGTERM by re-raising it
                    _write(out, sessions)

        return app

    return serve_as_ytmp3_api(factory)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
