"""The one shape of every JSON answer: data, message, message_code, error_fields."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    data: T
    message: str
    message_code: str
    error_fields: dict[str, str] = {}


class Empty(BaseModel):
    pass


class ApiError(Exception):
    """Raised anywhere in a request; answered as the envelope with no data."""

    def __init__(
        self,
        status_code: int,
        message_code: str,
        message: str,
        *,
        error_fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message_code = message_code
        self.message = message
        self.error_fields = error_fields or {}
        self.headers = headers


def envelope(
    data: Any,
    message: str,
    message_code: str,
    *,
    status_code: int = 200,
    error_fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    body = {
        "data": data if data is not None else {},
        "message": message,
        "message_code": message_code,
        "error_fields": error_fields or {},
    }
    return JSONResponse(body, status_code=status_code, headers=headers)


def encoded(response: JSONResponse) -> bytes:
    """The body of an envelope, to keep for an answer that repeats (see `reply`)."""
    return bytes(response.body)


def reply(body: bytes, *, status_code: int = 200) -> Response:
    """An envelope encoded before (`encoded`): the same bytes and headers as JSONResponse."""
    return Response(body, status_code=status_code, media_type=JSONResponse.media_type)


def error_response(exc: ApiError) -> JSONResponse:
    return envelope(
        {},
        exc.message,
        exc.message_code,
        status_code=exc.status_code,
        error_fields=exc.error_fields,
        headers=exc.headers,
    )


def error_doc(description: str, *codes: str) -> dict[str, Any]:
    """An OpenAPI `responses` entry for an error answer."""
    return {
        "model": Envelope[Empty],
        "description": f"{description} (message_code: {', '.join(codes)})",
    }
