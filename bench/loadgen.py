"""A fallback HTTP load generator for when wrk is missing: its own process, asyncio, raw sockets.

`python -m bench.loadgen PORT CONNECTIONS SECONDS BODY_FILE` POSTs BODY to /submit on
keep-alive connections for SECONDS and prints one JSON line: requests, seconds, statuses.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter


async def _connection(
    port: int, request: bytes, until: float, statuses: Counter[int], latencies: list[float]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < until:
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            statuses[int(lines[0].split()[1])] += 1
    finally:
        writer.close()


async def run(
    port: int, connections: int, seconds: float, body: bytes, authorization: str = ""
) -> dict[str, object]:
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    request = (
        f"POST /submit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    began = time.monotonic()
    until = began + seconds
    await asyncio.gather(
        *(_connection(port, request, until, statuses, latencies) for _ in range(connections))
    )
    elapsed = time.monotonic() - began
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else 0.0
    return {
        "requests": sum(statuses.values()),
        "seconds": elapsed,
        "statuses": {str(k): v for k, v in statuses.items()},
        "p99_ms": p99 * 1000,
    }


def main(argv: list[str]) -> int:
    port, connections, seconds = int(argv[1]), int(argv[2]), float(argv[3])
    with open(argv[4], "rb") as body:
        authorization = argv[5] if len(argv) > 5 else ""
        result = asyncio.run(run(port, connections, seconds, body.read(), authorization))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
