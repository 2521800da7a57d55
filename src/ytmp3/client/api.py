"""The ytmp3 API from the client's side: submit, follow the event stream, download.

Works on any httpx.AsyncClient: one to a server, or one into an app in this process.
Every way a request can go wrong comes out as a Failure with a code and words.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, Callable
from typing import Any

import httpx

from ytmp3.client import sse
from ytmp3.client.files import PartFile

# Reconnects of an event stream or a download that makes no progress, before giving up.
MAX_RETRIES = 5
RETRY_DELAY = 0.5  # seconds, doubled each time, up to MAX_DELAY
MAX_DELAY = 8.0
# A 429 is waited out (Retry-After, when at most MAX_RATE_WAIT) for up to RATE_WAIT_BUDGET
# seconds in all: a server shared by a household limits each address and how many
# conversions one client has waiting, and a long list of links should still go through.
MAX_RATE_WAIT = 120.0
RATE_WAIT_BUDGET = 3600.0
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

# Codes of the client's own, beside those the API answers with (spelled as the SPEC's).
SERVER_UNREACHABLE = "SERVER_UNREACHABLE"
DOWNLOAD_INTERRUPTED = "DOWNLOAD_INTERRUPTED"
BAD_RESPONSE = "BAD_RESPONSE"
EXPIRED = "NOT_FOUND"


class Failure(Exception):
    """Why a track (or a whole list) could not be had: a code and a sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _failure_of(response: httpx.Response) -> Failure:
    """The envelope's code and message; a plain description when the body is not one."""
    try:
        body = response.json()
        return Failure(str(body["message_code"]), str(body["message"]))
    except (ValueError, KeyError, TypeError):
        return Failure(BAD_RESPONSE, f"the server answered HTTP {response.status_code}")


def _unreachable(exc: httpx.TransportError, base: httpx.URL) -> Failure:
    return Failure(SERVER_UNREACHABLE, f"the server at {base} could not be reached ({exc})")


async def _retry_pause(tries: int) -> None:
    await asyncio.sleep(min(RETRY_DELAY * 2 ** (tries - 1), MAX_DELAY))


class Api:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(
        self, path: str, body: dict[str, Any], on_wait: Callable[[float], None] | None = None
    ) -> dict[str, Any]:
        """POST a JSON body; the `data` of a 200/201 answer. A 429 is waited out (told to
        `on_wait` first), as long as the server's Retry-After is reasonable."""
        waited = 0.0
        while True:
            try:
                response = await self.http.post(path, json=body)
            except httpx.TransportError as exc:
                raise _unreachable(exc, self.http.base_url) from None
            if response.status_code == 429:
                wait = _retry_after(response)
                if wait is not None and wait <= MAX_RATE_WAIT and waited + wait <= RATE_WAIT_BUDGET:
                    if on_wait is not None:
                        on_wait(wait)
                    await asyncio.sleep(wait)
                    waited += wait
                    continue
            if response.status_code not in (200, 201):
                raise _failure_of(response)
            try:
                data: dict[str, Any] = response.json()["data"]
            except (ValueError, KeyError, TypeError):
                raise _failure_of(response) from None
            return data

    async def follow(self, path: str) -> AsyncGenerator[dict[str, Any], None]:
        """Each `data` object of the event stream at `path`, until a done or failed one.

        A stream cut before that is opened again (it starts with the current state), a
        few times; a stream that ends with `expired` is a NOT_FOUND failure.
        """
        tries = 0
        while True:
            try:
                async with self.http.stream(
                    "GET", path, headers={"Accept": "text/event-stream"}
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        raise _failure_of(response)
                    async for event in sse.events(response.aiter_lines()):
                        if event.name == "expired":
                            raise Failure(EXPIRED, "the conversion expired on the server")
                        try:
                            data: dict[str, Any] = json.loads(event.data)
                        except ValueError:
                            raise Failure(BAD_RESPONSE, "an unreadable event") from None
                        tries = 0
                        yield data
                        if data.get("status") in ("done", "failed"):
                            return
                last: Exception = Failure(SERVER_UNREACHABLE, "the event stream ended early")
            except httpx.TransportError as exc:
                last = _unreachable(exc, self.http.base_url)
            tries += 1
            if tries > MAX_RETRIES:
                raise last
            await _retry_pause(tries)

    async def download(
        self, path: str, part: PartFile, on_bytes: Callable[[int, int | None], None]
    ) -> int:
        """The file at `path` into `part`; a transfer cut off goes on where it stopped
        (`Range`, with `If-Range` so a changed file starts over). The bytes written."""
        done, validator, tries = 0, None, 0
        while True:
            # identity: the byte counts are the file's, for Range and the bar
            headers = {"Accept-Encoding": "identity"}
            if done:
                headers["Range"] = f"bytes={done}-"
                if validator:
                    headers["If-Range"] = validator
            try:
                async with self.http.stream("GET", path, headers=headers) as response:
                    if response.status_code not in (200, 206):
                        await response.aread()
                        raise _failure_of(response)
                    total = _expected_total(response, done)
                    if response.status_code == 200 and done:
                        part.restart()  # a whole new copy: the file changed, or no Range
                        done = 0
                    validator = response.headers.get("etag") or response.headers.get(
                        "last-modified"
                    )
                    on_bytes(done, total)
                    async for chunk in response.aiter_bytes():
                        part.file.write(chunk)
                        done += len(chunk)
                        tries = 0
                        on_bytes(done, total)
                if total is None or done == total:
                    part.file.flush()
                    return done
                last = Failure(DOWNLOAD_INTERRUPTED, f"the server sent {done} of {total} bytes")
            except httpx.TransportError as exc:
                last = Failure(DOWNLOAD_INTERRUPTED, f"the download was cut off ({exc})")
            tries += 1
            if tries > MAX_RETRIES:
                raise last
            await _retry_pause(tries)


def _expected_total(response: httpx.Response, offset: int) -> int | None:
    """The whole file's size, from a 200 or from a 206 that starts at `offset`."""
    if response.status_code == 200:
        length = response.headers.get("content-length")
        return int(length) if length and length.isdigit() else None
    match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
    if match and int(match.group(1)) == offset and match.group(3) != "*":
        return int(match.group(3))
    raise Failure(BAD_RESPONSE, "the server sent a part of the file that was not asked for")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None
