"""ytmp3's per-request layers, one concern each, all pure ASGI (no BaseHTTPMiddleware: it
runs the app in a task of its own, where the request's context variables do not reach).

Outermost first: the request id (every line logged, every answer's header), the access
line and HTTP metrics (every answer, a refusal of the body limit's included), the body
limit. Starlette runs the last added outermost.
"""

from __future__ import annotations

from fastapi import FastAPI

from ytmp3.api.middleware.access import AccessMiddleware
from ytmp3.api.middleware.body_limit import BodyLimitMiddleware
from ytmp3.api.middleware.request_id import RequestIdMiddleware


def install_middleware(app: FastAPI) -> None:
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(AccessMiddleware)
    app.add_middleware(RequestIdMiddleware)
