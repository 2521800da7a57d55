"""What went wrong in a conversion, in words a person understands. Pure."""

from __future__ import annotations

import re
import signal

from ytmp3.model.job import ErrorCode

MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.VIDEO_UNAVAILABLE: (
        "This video can't be downloaded: it is private, removed or blocked where the service runs."
    ),
    ErrorCode.TOO_LONG: "This video is longer than this service accepts ({limit}).",
    ErrorCode.DOWNLOAD_FAILED: (
        "The video could not be downloaded from YouTube. Please try again in a few minutes."
    ),
    ErrorCode.CONVERSION_FAILED: "The video's audio could not be converted to MP3.",
    ErrorCode.TIMEOUT: "The conversion took too long and was stopped. Please try again later.",
}


class ConversionError(Exception):
    """A conversion that cannot succeed (or not on this try, when `retryable`)."""

    def __init__(
        self, code: ErrorCode, message: str, retryable: bool = False, detail: str = ""
    ) -> None:
        super().__init__(f"{code}: {detail or message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.detail = detail


def failure(
    code: ErrorCode, *, retryable: bool = False, detail: str = "", **fmt: str
) -> ConversionError:
    return ConversionError(code, MESSAGES[code].format(**fmt), retryable, detail)


def human_duration(seconds: int) -> str:
    """7200 -> "2 h", 5400 -> "1 h 30 min", 90 -> "1 min 30 s" (never "0 min")."""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if n]
    return " ".join(parts) or "0 s"


def ended(what: str, code: int, last_warning: str | None = None) -> str:
    """How a process ended without telling why, for the log: ("the download", -9) ->
    "the download was killed by SIGKILL"; with yt-dlp's last warning, often the reason."""
    if code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    return f"{what} {how}" + (f" (yt-dlp's last warning: {last_warning})" if last_warning else "")


_UNAVAILABLE = re.compile(
    # not a bare "not available": "Requested format is not available" is no private video.
    r"private video|video unavailable|has been removed|no longer available|video is not available"
    r"|in your country|copyright|sign in to confirm|members[- ]only|account associated"
    r"|this video is unavailable|HTTP Error 404|HTTP Error 410|does not exist",
    re.IGNORECASE,
)
_TRANSIENT = re.compile(
    r"HTTP Error (5\d\d|403|408|429)|timed? ?out|connection (refused|reset|aborted)"
    r"|temporary failure|network is unreachable|incompleteread|remote end closed"
    r"|urlopen error|unable to download|read error|got error|eof occurred",
    re.IGNORECASE,
)


def classify_download_error(text: str) -> ConversionError:
    """yt-dlp's error text -> VIDEO_UNAVAILABLE (final) or DOWNLOAD_FAILED (retried if
    transient)."""
    if _TRANSIENT.search(text) and not re.search(r"HTTP Error 40[14]|HTTP Error 410", text):
        return failure(ErrorCode.DOWNLOAD_FAILED, retryable=True, detail=text)
    if _UNAVAILABLE.search(text):
        return failure(ErrorCode.VIDEO_UNAVAILABLE, detail=text)
    return failure(ErrorCode.DOWNLOAD_FAILED, detail=text)
