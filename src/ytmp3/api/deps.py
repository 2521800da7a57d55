"""What routes get from the app's lifespan, handed over as FastAPI dependencies.

The lifespan (ytmp3.api.app) builds one `Resources` and keeps it on `app.state`; every
route asks for what it needs through these, so a test can swap any of them with
`app.dependency_overrides`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from arq.connections import ArqRedis
from fastapi import Depends, Request

from ytmp3.access.gate import Gate
from ytmp3.access.keys import KeyStore
from ytmp3.access.usage import Usage
from ytmp3.api.client_address import client_address
from ytmp3.api.stream_slots import StreamSlots
from ytmp3.cache.events import EventHub
from ytmp3.cache.job_store import JobStore
from ytmp3.cache.memo import Memo
from ytmp3.cache.probe import VideoProbe
from ytmp3.config import Settings
from ytmp3.storage.base import Storage


@dataclass
class Resources:
    """Owned by the lifespan: created at start, closed at stop."""

    settings: Settings
    redis: ArqRedis
    http: httpx.AsyncClient
    jobs: JobStore
    probe: VideoProbe
    storage: Storage  # where the MP3s are: the media dir or a bucket
    mp3s: Memo[str, bool]  # job id -> its MP3 is there (see bench/RESULTS.md)
    events: EventHub  # every event stream's one pub/sub connection
    streams: StreamSlots  # event streams open per client address
    keys: KeyStore | None = None  # YTMP3_AUTH=keys only
    gate: Gate | None = None
    usage: Usage | None = None  # what each key used, written about once a second


# async, so FastAPI calls them in the event loop instead of a thread per dependency


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings(resources: ResourcesDep) -> Settings:
    return resources.settings


async def get_redis(resources: ResourcesDep) -> ArqRedis:
    return resources.redis


async def get_jobs(resources: ResourcesDep) -> JobStore:
    return resources.jobs


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[ArqRedis, Depends(get_redis)]
JobsDep = Annotated[JobStore, Depends(get_jobs)]


def client_of(request: Request, settings: Settings) -> str:
    """The address the request counts against (see ytmp3.api.client_address)."""
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.get("x-forwarded-for"), settings.trusted_networks)
