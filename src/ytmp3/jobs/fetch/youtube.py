"""A download's failure as the job records it, and, when YouTube caused it, what the
operator reads: a log line with the fix and a count in /metrics."""

from __future__ import annotations

import logging

from ytmp3 import metrics
from ytmp3.model.failures import OPERATOR_HINTS, ConversionError, classify_download_error
from ytmp3.model.job import ErrorCode

log = logging.getLogger(__name__)

# the operator can do something about these; the others only wait for the video
_ACTIONABLE = frozenset({ErrorCode.YOUTUBE_BLOCKED, ErrorCode.AGE_RESTRICTED})


def classified(text: str) -> ConversionError:
    """yt-dlp's error text -> the job's failure; YouTube's doing is logged and counted."""
    error = classify_download_error(text)
    hint = OPERATOR_HINTS.get(error.code)
    if hint is not None:
        metrics.YOUTUBE_FAILURES.labels(error.code.value).inc()
        log.log(
            logging.WARNING if error.code in _ACTIONABLE else logging.INFO,
            "%s: %s (yt-dlp said: %s)", error.code.value, hint, text[-300:],
            extra={"event": "youtube.refused", "code": error.code.value},
        )  # fmt: skip
    return error
