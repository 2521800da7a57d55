"""The request body limit: what counts as too large, and the answer then."""

from __future__ import annotations

from starlette.responses import Response

from ytmp3.api.envelope import envelope

MAX_BODY = 16 * 1024


def declared_too_large(content_length: bytes | None, max_body: int) -> bool:
    """A Content-Length over the limit: refused before a byte of the body is read."""
    if content_length is None:
        return False
    try:
        return int(content_length) > max_body
    except ValueError:
        return False  # the server refuses a garbled length itself


def refusal(max_body: int) -> Response:
    return envelope(
        {},
        f"The request body is larger than {max_body // 1024} KiB.",
        "PAYLOAD_TOO_LARGE",
        status_code=413,
        headers={"Connection": "close"},
    )
