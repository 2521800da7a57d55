"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from ytmp3.api.deps import RedisDep
from ytmp3.api.envelope import envelope, error_doc
from ytmp3.cache import workers

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """The process is up; says nothing about Redis or workers."""
    return envelope({"status": "ok"}, "The API process is up.", "ALIVE")


@router.get("/readyz", responses={503: error_doc("Redis or every worker is missing", "NOT_READY")})
async def readyz(redis: RedisDep) -> JSONResponse:
    """Redis answers and a worker taking jobs has a live record (ytmp3.cache.workers);
    `worker_list` shows every live worker, draining ones too, with its yt-dlp version."""
    import yt_dlp.version

    data: dict[str, object] = {
        "redis": False,
        "worker": False,
        "workers": 0,
        "yt_dlp": yt_dlp.version.__version__,
        "worker_list": [],
    }
    try:
        data["redis"] = bool(await redis.ping())
        found = await workers.records(redis)
        count = sum(r.state is workers.State.TAKING for r in found)
        data["workers"], data["worker"] = count, count > 0
        data["worker_list"] = [r.model_dump(mode="json") for r in found]
    except (RedisError, OSError):
        pass
    if not data["redis"]:
        return envelope(data, "Redis does not answer.", "NOT_READY", status_code=503)
    if not data["worker"]:
        seconds = f"{workers.ALIVE_FOR:g}"
        message = f"No worker taking jobs has sent a heartbeat in the last {seconds} s."
        return envelope(data, message, "NOT_READY", status_code=503)
    return envelope(data, "Ready to convert.", "READY")
