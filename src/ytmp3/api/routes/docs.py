"""GET /openapi.json, /docs (Swagger UI) and /redoc (ReDoc): the API's description, every
script and style served by ytmp3 itself (static/vendor/, pinned), under a security policy
of their own. Routes of their own (FastAPI's are turned off in ytmp3.api.app), included
last: a request is matched against each route in turn, the busy ones first."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from ytmp3.api.routes.page import SECURITY_HEADERS

SWAGGER_UI = "/static/vendor/swagger-ui-5.35.0"
REDOC = "/static/vendor/redoc-2.5.4"
FAVICON = "/static/favicon.svg"
OPENAPI_URL = "/openapi.json"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def policy(page: str) -> str:
    """The CSP of a viewer page: only the service, plus the page's own inline scripts by
    hash. Both viewers write styles at run time (so 'unsafe-inline' for styles only) and
    draw icons from data: URLs; ReDoc searches in a worker made from a blob."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(page)
    )
    return (
        f"default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode()
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": policy(html)}
    return HTMLResponse(html, headers=headers)


def router(app: FastAPI) -> APIRouter:
    """The document and the two pages, each made once, at its first request or now."""
    title = app.title
    swagger = _with_policy(
        get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=FAVICON,
            # no online validator badge: it would send the document elsewhere
            swagger_ui_parameters={"validatorUrl": None},
        )
    )
    redoc = _with_policy(
        get_redoc_html(
            openapi_url=OPENAPI_URL,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{REDOC}/redoc.standalone.js",
            redoc_favicon_url=FAVICON,
            with_google_fonts=False,
        )
    )
    routes = APIRouter(include_in_schema=False)

    @routes.get(OPENAPI_URL)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())  # FastAPI builds it once and keeps it

    @routes.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return swagger

    @routes.get("/redoc")
    async def redoc_page() -> HTMLResponse:
        return redoc

    return routes
