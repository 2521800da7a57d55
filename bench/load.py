"""Load on loopback from a process of its own: wrk when installed, else bench/loadgen.py."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.env import ROOT, BenchError

# wrk prints one JSON line when done; non-2xx answers count as `status` errors.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("%(body)s", "rb"):read("*a")
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "seconds": %%f, "non2xx": %%d, "socket_errors": %%d, "p99_ms": %%f}\\n',
    summary.requests, summary.duration / 1e6, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(99) / 1000))
end
"""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    failed: int  # non-2xx answers and socket errors
    p99_ms: float
    tool: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def generate(
    port: int,
    body: bytes,
    *,
    seconds: float,
    connections: int,
    work: Path,
    authorization: str | None = None,
) -> Load:
    """POST `body` to /submit on `connections` keep-alive connections for `seconds`."""
    body_file = work / "body.json"
    body_file.write_bytes(body)
    wrk = shutil.which("wrk")
    if wrk:
        script = work / "submit.lua"
        extra = f'wrk.headers["Authorization"] = "{authorization}"\n' if authorization else ""
        script.write_text(extra + WRK_SCRIPT % {"body": body_file})
        argv = [
            wrk, "-t1", f"-c{connections}", f"-d{math.ceil(seconds)}s", "--timeout", "10s",
            "-s", str(script), f"http://127.0.0.1:{port}/submit",
        ]  # fmt: skip
    else:
        argv = [
            sys.executable, "-m", "bench.loadgen", str(port), str(connections), str(seconds),
            str(body_file), authorization or "",
        ]  # fmt: skip
    done = subprocess.run(
        argv, capture_output=True, text=True, cwd=ROOT, timeout=seconds + 60, check=False
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("{")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"load generator failed ({done.returncode}): {done.stderr[-500:]}")
    result = json.loads(line)
    if wrk:
        failed = int(result["non2xx"]) + int(result["socket_errors"])
    else:
        statuses: dict[str, int] = result["statuses"]
        failed = sum(n for code, n in statuses.items() if not code.startswith("2"))
    return Load(
        requests=int(result["requests"]),
        seconds=float(result["seconds"]),
        failed=failed,
        p99_ms=float(result["p99_ms"]),
        tool="wrk" if wrk else "bench.loadgen",
    )
