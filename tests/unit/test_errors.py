"""yt-dlp's error text -> a failure code, a retry decision and a sentence for people."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ytmp3.model.failures import (
    LIVE_TEXT,
    MESSAGES,
    OPERATOR_HINTS,
    UPCOMING_TEXT,
    ConversionError,
    classify_download_error,
    ended,
    failure,
    human_duration,
)
from ytmp3.model.job import ErrorCode

UNAVAILABLE = [
    "ERROR: [youtube] abc: Private video. Sign in if you've been granted access to this video",
    "ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader",
    "ERROR: [youtube] abc: Video unavailable. The uploader has not made this video available "
    "in your country",
    "ERROR: [youtube] abc: Video unavailable",
    "ERROR: [youtube] abc: This video is not available",
    "ERROR: [youtube] abc: Video unavailable. This video is no longer available because the "
    "YouTube account associated with this video has been terminated.",
    "ERROR: [youtube] abc: Video unavailable. This video is no longer available due to a "
    "copyright claim by Someone",
    "ERROR: [youtube] abc: Join this channel to get access to members-only content like this "
    "video, and other exclusive perks.",
    "ERROR: [generic] Unable to download webpage: HTTP Error 404: Not Found",
    "ERROR: unable to download video data: HTTP Error 404: Not Found",
    "ERROR: [generic] Unable to download webpage: HTTP Error 410: Gone",
]

TRANSIENT = [
    "ERROR: unable to download video data: HTTP Error 503: Service Unavailable",
    "ERROR: [generic] Unable to download webpage: HTTP Error 500: Internal Server Error "
    "(caused by <HTTPError 500: Internal Server Error>)",
    "ERROR: unable to download video data: HTTP Error 502: Bad Gateway",
    # a 403 on the media URL: the next try extracts afresh, with new URLs
    "ERROR: unable to download video data: HTTP Error 403: Forbidden",
    "ERROR: [generic] Unable to download webpage: <urlopen error [Errno 111] Connection refused>",
    "ERROR: [youtube] abc: Unable to download webpage: <urlopen error [Errno -3] "
    "Temporary failure in name resolution>",
    "The read operation timed out",
    "ERROR: [download] Got error: The read operation timed out",
    "ERROR: [download] Got error: [Errno 104] Connection reset by peer",
    "ERROR: [download] Got error: ('Connection aborted.', RemoteDisconnected('Remote end "
    "closed connection without response'))",
    "ERROR: [download] Got error: IncompleteRead(1024 bytes read, 2048 more expected)",
    "ERROR: [youtube] abc: Unable to download webpage: <urlopen error [Errno 101] Network is "
    "unreachable>",
]

# As yt-dlp words them: YouTube's playability reason, then yt-dlp's hint
# (yt_dlp/extractor/youtube/_video.py: `if 'sign in' in reason.lower()`, _base.py:
# _youtube_login_hint, common.py: _login_hint(method="cookies")).
LOGIN_HINT = (
    "Use --cookies-from-browser or --cookies for the authentication. See  "
    "https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to "
    "manually pass cookies. Also see  https://github.com/yt-dlp/yt-dlp/wiki/Extractors"
    "#exporting-youtube-cookies  for tips on effectively exporting YouTube cookies"
)
YOUTUBE = {
    ErrorCode.YOUTUBE_BLOCKED: [
        f"ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you\u2019re not a bot. {LOGIN_HINT}",
        f"ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you're not a bot. {LOGIN_HINT}",
        "ERROR: [youtube] abc: Unable to download API page: HTTP Error 429: Too Many Requests",
        "ERROR: [generic] Unable to download webpage: HTTP Error 429: Too Many Requests "
        "(caused by <HTTPError 429: Too Many Requests>)",
        "ERROR: [youtube] abc: All player responses are invalid. Your IP is likely being "
        "blocked by Youtube",
        "ERROR: [youtube] abc: Video unavailable. This content isn't available, try again "
        "later. The current session has been rate-limited by YouTube for up to an hour. It is "
        "recommended to use `-t sleep` to add a delay between video requests",
        "ERROR: [youtube] abc: Please confirm you are human. YouTube is requiring a captcha "
        "challenge before playback",
    ],
    ErrorCode.AGE_RESTRICTED: [
        "ERROR: [youtube] abc: Sign in to confirm your age. This video may be inappropriate "
        f"for some users. {LOGIN_HINT}",
        "ERROR: [youtube] abc: This video is age-restricted and YouTube is requiring account "
        "age-verification; some formats may be missing",
    ],
    ErrorCode.NOT_YET_AVAILABLE: [
        "ERROR: [youtube] abc: This live event will begin in 3 hours.",
        "ERROR: [youtube] abc: This live event will begin in a few moments.",
        "ERROR: [youtube] abc: Premieres in 10 hours",
        "ERROR: [youtube] abc: Premiere will begin shortly",
        UPCOMING_TEXT,
    ],
    ErrorCode.LIVE_STREAM: [LIVE_TEXT],
}
YOUTUBE_CASES = [(code, text) for code, texts in YOUTUBE.items() for text in texts]


@pytest.mark.parametrize(("code", "text"), YOUTUBE_CASES)
def test_youtube_failures_have_their_own_codes(code: ErrorCode, text: str) -> None:
    error = classify_download_error(text)
    assert error.code is code
    assert not error.retryable  # a bot check tried again at once only deepens the block
    assert error.message == MESSAGES[code]
    assert error.detail == text


def test_every_youtube_code_has_a_fix_for_the_operator() -> None:
    assert set(OPERATOR_HINTS) == set(YOUTUBE)
    assert "YTMP3_COOKIES_FILE" in OPERATOR_HINTS[ErrorCode.YOUTUBE_BLOCKED]
    assert "PO-token" in OPERATOR_HINTS[ErrorCode.YOUTUBE_BLOCKED]
    assert "YTMP3_COOKIES_FILE" in OPERATOR_HINTS[ErrorCode.AGE_RESTRICTED]


def test_the_bot_check_message_tells_the_person_what_happened() -> None:
    message = MESSAGES[ErrorCode.YOUTUBE_BLOCKED]
    assert "not a bot" in message and "cookies" in message and "PO-token" in message


UNKNOWN = [
    "ERROR: Postprocessing: something odd happened",
    "ERROR: [youtube] abc: Requested format is not available. Use --list-formats",
    "",
    "something nobody has ever seen",
]


@pytest.mark.parametrize("text", UNAVAILABLE)
def test_unavailable_is_final(text: str) -> None:
    error = classify_download_error(text)
    assert error.code is ErrorCode.VIDEO_UNAVAILABLE
    assert not error.retryable
    assert error.message == MESSAGES[ErrorCode.VIDEO_UNAVAILABLE]
    assert error.detail == text


@pytest.mark.parametrize("text", TRANSIENT)
def test_transient_is_retried(text: str) -> None:
    error = classify_download_error(text)
    assert error.code is ErrorCode.DOWNLOAD_FAILED
    assert error.retryable
    assert error.message == MESSAGES[ErrorCode.DOWNLOAD_FAILED]
    assert error.detail == text


@pytest.mark.parametrize("text", UNKNOWN)
def test_unknown_fails_without_retry(text: str) -> None:
    error = classify_download_error(text)
    assert error.code is ErrorCode.DOWNLOAD_FAILED
    assert not error.retryable


def test_the_raw_text_is_detail_not_the_message() -> None:
    text = "ERROR: unable to download video data: HTTP Error 503: Service Unavailable"
    error = classify_download_error(text)
    assert isinstance(error, ConversionError)
    assert "ERROR" not in error.message
    assert "503" in str(error)


@given(st.text())
def test_classify_never_raises(text: str) -> None:
    error = classify_download_error(text)
    assert error.code in (ErrorCode.DOWNLOAD_FAILED, ErrorCode.VIDEO_UNAVAILABLE, *YOUTUBE)
    assert not (error.code is not ErrorCode.DOWNLOAD_FAILED and error.retryable)
    assert error.detail == text


SENTENCE = re.compile(r"[A-Z][^\n{}]*[.!]")


def test_every_code_has_a_sentence() -> None:
    assert set(MESSAGES) == set(ErrorCode)
    for code in ErrorCode:
        message = failure(code, limit="2 h").message
        assert SENTENCE.fullmatch(message), (code, message)


def test_too_long_names_the_limit() -> None:
    error = failure(ErrorCode.TOO_LONG, limit=human_duration(7200), detail="duration 9000")
    assert error.message == "This video is longer than this service accepts (2 h)."
    assert error.code is ErrorCode.TOO_LONG
    assert not error.retryable
    assert error.detail == "duration 9000"


def test_failure_carries_retry_flag() -> None:
    assert failure(ErrorCode.TIMEOUT, retryable=True).retryable
    assert not failure(ErrorCode.CONVERSION_FAILED).retryable


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (7200, "2 h"),
        (3600, "1 h"),
        (5400, "1 h 30 min"),
        (3660, "1 h 1 min"),
        (600, "10 min"),
        (60, "1 min"),
        (90, "1 min 30 s"),
        (45, "45 s"),
        (1, "1 s"),
        (0, "0 s"),
        (3601, "1 h 1 s"),
        (86400, "24 h"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


@given(st.integers(1, 10**6))
def test_human_duration_never_says_zero_of_anything(seconds: int) -> None:
    text = human_duration(seconds)
    assert not re.search(r"(^|\s)0 ", text)
    total = 0
    for number, unit in re.findall(r"(\d+) (h|min|s)", text):
        total += int(number) * {"h": 3600, "min": 60, "s": 1}[unit]
    assert total == seconds


@pytest.mark.parametrize(
    ("code", "warning", "told"),
    [
        (-9, None, "the download was killed by SIGKILL"),
        (-15, None, "the download was killed by SIGTERM"),
        (-200, None, "the download was killed by signal 200"),
        (70, None, "the download exited with code 70"),
        (
            1,
            "unable to extract",
            "the download exited with code 1 (yt-dlp's last warning: unable to extract)",
        ),
    ],
)
def test_a_silent_download_end_is_told_in_words(code: int, warning: str | None, told: str) -> None:
    assert ended("the download", code, warning) == told
