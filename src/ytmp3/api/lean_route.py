"""A leaner FastAPI route for endpoints that take one JSON body model and the request.

FastAPI's request handler serves every shape of endpoint and pays for that on each
request: it walks the dependency tree, reads the query string, headers and cookies for
parameters, parses the Content-Type with the email package and calls telemetry hooks.
For an endpoint of one body model (POST /submit) that was most of a cache-hit
submission's time. This route's handler does that endpoint's part only, in FastAPI's
order and with FastAPI's own validation of the body (so the same errors): read the
body, run the route's dependencies when they need nothing but the request (the rate
limit), validate, call the endpoint, which answers with a Response. A route that needs
anything more keeps FastAPI's handler.
"""

from __future__ import annotations

import email.message
import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, get_type_hints

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic_core import PydanticUndefined
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class LeanRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        standard = super().get_route_handler()
        guards = _guards(self.dependant)
        if not _lean(self) or guards is None:
            return standard
        body_params = self.dependant.body_params
        request_name = self.dependant.request_param_name
        endpoint: Callable[..., Awaitable[Response]] = self.dependant.call  # type: ignore[assignment]
        strict = self.strict_content_type
        strict_type = strict if isinstance(strict, bool) else bool(strict.value)

        async def handler(request: Request) -> Response:
            provider = self.dependency_overrides_provider
            if guards and provider is not None and provider.dependency_overrides:
                return await standard(request)  # a test swapped a dependency: FastAPI's way
            body = await _json_body(request, strict_content_type=strict_type)
            for guard, request_param in guards:
                await guard(**{request_param: request})
            values, errors = await request_body_to_args(
                body_fields=body_params, received_body=body, embed_body_fields=False
            )
            if errors:
                raise RequestValidationError(errors, body=body)
            if request_name is not None:
                values[request_name] = request
            return await endpoint(**values)

        return handler


def _lean(route: APIRoute) -> bool:
    """One JSON body model, perhaps the request, nothing else; answers with a Response."""
    dependant = route.dependant
    if (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or len(dependant.body_params) != 1
        or route._embed_body_fields
        or isinstance(route.body_field and route.body_field.field_info, params.Form)
        or dependant.http_connection_param_name
        or dependant.websocket_param_name
        or dependant.background_tasks_param_name
        or dependant.response_param_name
        or dependant.security_scopes_param_name
        or route.max_body_size is not None
        or not inspect.iscoroutinefunction(dependant.call)
    ):
        return False
    answer = get_type_hints(dependant.call).get("return")
    return isinstance(answer, type) and issubclass(answer, Response)


Guard = tuple[Callable[..., Awaitable[Any]], str]  # the function, its request parameter


def _guards(dependant: Dependant) -> list[Guard] | None:
    """The route's own dependencies when each is `async def f(request)`; else None."""
    guards: list[Guard] = []
    for sub in dependant.dependencies:
        call = sub.call
        takes_request_only = (
            sub.name is None  # a route's `dependencies=[...]`: its value is not used
            and not sub.dependencies
            and not (sub.path_params or sub.query_params or sub.header_params)
            and not (sub.cookie_params or sub.body_params)
            and not (sub.background_tasks_param_name or sub.response_param_name)
            and not (sub.security_scopes_param_name or sub.http_connection_param_name)
            and inspect.iscoroutinefunction(call)
        )
        if not takes_request_only or call is None or sub.request_param_name is None:
            return None
        if sub.use_cache and any(known is call for known, _ in guards):
            continue  # FastAPI calls a dependency listed twice once per request
        guards.append((call, sub.request_param_name))
    return guards


async def _json_body(request: Request, *, strict_content_type: bool) -> Any:
    """The body as FastAPI's handler reads it: JSON when said to be, else the bytes."""
    try:
        raw = await request.body()
        if not raw:
            return PydanticUndefined
        if _says_json(request.headers.get("content-type"), strict_content_type):
            return await request.json()
        return raw
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
            ],
            body=exc.doc,
        ) from exc
    except HTTPException:
        raise
    except Exception as exc:
        if MAX_BODY_SIZE_SCOPE_KEY in request.scope:
            raise  # FastAPI's own body limit: its middleware answers
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc


def _says_json(content_type: str | None, strict: bool) -> bool:
    if not content_type:
        return not strict
    if content_type == "application/json":  # what clients send: no parsing needed
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")
