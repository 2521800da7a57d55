"""The JavaScript runtime yt-dlp needs for YouTube's challenges, shipped as a dependency.

The `deno` package carries the deno binary; `yt-dlp-ejs` carries the challenge
solver scripts, so nothing is fetched at run time.
"""

from __future__ import annotations

import logging
import os
from functools import cache

log = logging.getLogger(__name__)

JsRuntimes = dict[str, dict[str, str]]


@cache
def js_runtimes() -> JsRuntimes | None:
    """yt-dlp's `js_runtimes` parameter naming the shipped deno, or None without it."""
    try:
        import deno
    except ImportError:
        log.warning("the deno package is missing: YouTube downloads may fail its challenges")
        return None
    path = str(deno.find_deno_bin())
    if not os.access(path, os.X_OK):
        log.warning("deno at %s is not executable", path)
        return None
    return {"deno": {"path": path}}
