"""The throughput baseline: a bare FastAPI endpoint taking ytmp3's SubmitRequest body.

It answers the same envelope as a cache hit (REQUEST_EXISTS) from constants, with no
Redis, no dependencies and no middleware. It is served by `ytmp3 api` itself, the app
factory swapped for this one, so uvicorn and logging are set up exactly as for ytmp3
(ytmp3/cli.py, from the same YTMP3_* environment). `python -m bench.bare_app`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from ytmp3.api.schemas import SubmitRequest

JOB_ID = "dQw4w9WgXcQ-192-AbCdEfGh"
ANSWER: dict[str, Any] = {
    "data": {
        "id": JOB_ID,
        "filename": JOB_ID,
        "video_id": "dQw4w9WgXcQ",
        "bitrate": 192,
        "status": "done",
        "status_url": f"/status/{JOB_ID}",
        "download_url": f"/download-music/{JOB_ID}",
    },
    "message": "This video is already being converted or done.",
    "message_code": "REQUEST_EXISTS",
    "error_fields": {},
}

app = FastAPI()


@app.post("/submit")
async def submit(body: SubmitRequest) -> JSONResponse:
    return JSONResponse(ANSWER)


@app.get("/bench-bare")
async def marker() -> JSONResponse:
    """Tells the bench this is the bare app and not ytmp3's."""
    return JSONResponse({"bare": True})


def serve_as_ytmp3_api(factory: Any) -> int:
    """Run `ytmp3 api` with `factory(settings, **kw)` in place of ytmp3's app factory."""
    import ytmp3.api.app
    from ytmp3 import cli

    ytmp3.api.app.create_app = factory
    return cli.main(["api"])


def main() -> int:
    return serve_as_ytmp3_api(lambda settings, **kw: app)


if __name__ == "__main__":
    raise SystemExit(main())
