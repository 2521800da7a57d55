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
    ErrorCode.YOUTUBE_BLOCKED: (
        "YouTube asked this server to prove it is not a bot; the operator can add cookies or "
        "a PO-token provider. Please try again later."
    ),
    ErrorCode.AGE_RESTRICTED: (
        "This video is age-restricted: YouTube shows it only to a signed-in adult account, "
        "and this server has none (the operator can add cookies)."
    ),
    ErrorCode.NOT_YET_AVAILABLE: (
        "This video is not out yet (a premiere or a live stream still to come). "
        "Try again once it has aired."
    ),
    ErrorCode.LIVE_STREAM: (
        "This is a live stream still airing. It can be converted once the stream has ended."
    ),
}

# What the operator can do about the failures YouTube causes: for the worker's log.
OPERATOR_HINTS: dict[ErrorCode, str] = {
    ErrorCode.YOUTUBE_BLOCKED: (
        "YouTube is blocking this server (a bot check or HTTP 429): set YTMP3_COOKIES_FILE to "
        "a signed-in account's cookies, or run a PO-token provider plugin such as "
        "bgutil-ytdlp-pot-provider (README: Keeping up with YouTube); fewer requests from "
        "this address help too"
    ),
    ErrorCode.AGE_RESTRICTED: (
        "an age-restricted video: set YTMP3_COOKIES_FILE to the cookies of a signed-in, "
        "age-verified YouTube account"
    ),
    ErrorCode.NOT_YET_AVAILABLE: (
        "a premiere or an upcoming live stream: nothing to fix, it converts once it has aired"
    ),
    ErrorCode.LIVE_STREAM: (
        "a live stream still airing: nothing to fix, it converts once the stream has ended"
    ),
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


# The texts are YouTube's (its playability reasons, which yt-dlp's YouTube extractor
# raises as they come, with an apostrophe that is often a typographic one) and yt-dlp's
# own (yt_dlp/extractor/youtube/_video.py, _base.py), plus the two ytmp3's download says
# itself of a video yt-dlp would otherwise start downloading (LIVE_TEXT, UPCOMING_TEXT).
LIVE_TEXT = "ytmp3: the video is a live stream still airing (live_status is_live)"
UPCOMING_TEXT = "ytmp3: the video is a premiere or a live stream still to come (is_upcoming)"
_BLOCKED = re.compile(
    r"confirm you(?:['\u2019]re| are) not a (?:bot|robot)|HTTP Error 429|Too Many Requests"
    r"|rate-limited by YouTube|likely being blocked by YouTube|requiring a captcha",
    re.IGNORECASE,
)
_AGE = re.compile(
    r"confirm your age|age-restricted|inappropriate for some users|age.verification",
    re.IGNORECASE,
)
_UPCOMING = re.compile(
    r"live event will begin|premieres? in \d|premiere will begin|will begin shortly"
    r"|is_upcoming",
    re.IGNORECASE,
)
_LIVE = re.compile(r"live stream still airing|live_status is_live", re.IGNORECASE)
_UNAVAILABLE = re.compile(
    # not a bare "not available": "Requested format is not available" is no private video.
    r"private video|video unavailable|has been removed|no longer available|video is not available"
    r"|in your country|copyright|members[- ]only|account associated"
    r"|this video is unavailable|HTTP Error 404|HTTP Error 410|does not exist",
    re.IGNORECASE,
)
_TRANSIENT = re.compile(
    r"HTTP Error (5\d\d|403|408)|timed? ?out|connection (refused|reset|aborted)"
    r"|temporary failure|network is unreachable|incompleteread|remote end closed"
    r"|urlopen error|unable to download|read error|got error|eof occurred",
    re.IGNORECASE,
)
# Checked in this order: YouTube's reasons often start "Video unavailable." too.
_YOUTUBE: tuple[tuple[re.Pattern[str], ErrorCode], ...] = (
    (_BLOCKED, ErrorCode.YOUTUBE_BLOCKED),
    (_AGE, ErrorCode.AGE_RESTRICTED),
    (_UPCOMING, ErrorCode.NOT_YET_AVAILABLE),
    (_LIVE, ErrorCode.LIVE_STREAM),
)


def classify_download_error(text: str) -> ConversionError:
    """yt-dlp's error text -> a YouTube code or VIDEO_UNAVAILABLE (final), or
    DOWNLOAD_FAILED (retried if transient).

    A bot check is not tried again at once: more requests only deepen the block. A 403 on
    the media is: the next try extracts afresh, with new media URLs.
    """
    for pattern, code in _YOUTUBE:
        if pattern.search(text):
            return failure(code, detail=text)
    if _TRANSIENT.search(text) and not re.search(r"HTTP Error 40[14]|HTTP Error 410", text):
        return failure(ErrorCode.DOWNLOAD_FAILED, retryable=True, detail=text)
    if _UNAVAILABLE.search(text):
        return failure(ErrorCode.VIDEO_UNAVAILABLE, detail=text)
    return failure(ErrorCode.DOWNLOAD_FAILED, detail=text)
