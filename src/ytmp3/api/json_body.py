"""JSON bodies whose every parse failure is the client's (422 VALIDATION_ERROR).

FastAPI answers a body that `json.loads` rejects with anything but JSONDecodeError (nested
past the recursion limit, an integer past Python's 4,300 digits, bytes that are not UTF-8)
as a bare 400. This route hands its endpoint a request whose `json()` turns each of those
into the JSONDecodeError FastAPI makes a validation error of: FastAPI's documented way to
change how a request is read ("Custom Request and APIRoute class").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


def parse_json(raw: bytes) -> Any:
    """`json.loads(raw)`; every failure raised as json.JSONDecodeError. Pure."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("nested too deep", "", 0) from None
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("not UTF-8", "", exc.start) from None
    except ValueError as exc:  # an integer of more digits than int() takes
        raise json.JSONDecodeError(str(exc), "", 0) from None


class JsonBodyRequest(Request):
    async def json(self) -> Any:
        return parse_json(await self.body())


class JsonBodyRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def read_json_strictly(request: Request) -> Response:
            return await handler(JsonBodyRequest(request.scope, request.receive))

        return read_json_strictly
