"""Every failure answered as the envelope: never a stack trace, never FastAPI's own bodies."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from ytmp3.api.envelope import ApiError, envelope, error_response
from ytmp3.storage.base import StorageError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    404: ("NOT_FOUND", "Nothing is here."),
    405: ("METHOD_NOT_ALLOWED", "This address does not answer that method."),
}


def service_unavailable() -> ApiError:
    return ApiError(
        503,
        "SERVICE_UNAVAILABLE",
        "The service is unavailable right now. Please try again in a moment.",
        headers={"Retry-After": "5"},
    )


def validation_fields(exc: RequestValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        name = loc[0] if loc and not loc[0].isdigit() else "body"
        if error.get("type") == "json_invalid":
            fields["body"] = "The body must be a JSON object."
        elif error.get("type") == "model_attributes_type" or (not loc and name == "body"):
            fields.setdefault("body", "The body must be a JSON object.")
        else:
            fields.setdefault(name, str(error.get("msg", "invalid")))
    return fields or {"body": "The request is not valid."}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = validation_fields(exc)
        summary = "; ".join(f"{k}: {v}" for k, v in fields.items())
        return envelope(
            {},
            f"The request is not valid ({summary}).",
            "VALIDATION_ERROR",
            status_code=422,
            error_fields=fields,
        )

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> Response:
        code, message = _HTTP_CODES.get(exc.status_code, ("HTTP_ERROR", str(exc.detail)))
        return envelope(
            {}, message, code, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    async def on_redis_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("redis unavailable: %s", exc)
        return error_response(service_unavailable())

    app.add_exception_handler(RedisConnectionError, on_redis_down)
    app.add_exception_handler(RedisTimeoutError, on_redis_down)
    app.add_exception_handler(ConnectionError, on_redis_down)

    @app.exception_handler(StorageError)
    async def on_storage_down(request: Request, exc: StorageError) -> JSONResponse:
        log.warning("storage unavailable: %s", exc)
        return error_response(service_unavailable())

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return envelope({}, "Something went wrong on our side.", "INTERNAL_ERROR", status_code=500)
