"""The one settings object, read from the environment (and `.env`) once at start."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    ByteSize,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "YTMP3_"
_RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")

Seconds = Annotated[int, Field(gt=0)]


# A dataclass, not a NamedTuple: a `count` field would clash with tuple.count (mypy).
@dataclass(frozen=True, slots=True)
class RateLimit:
    count: int
    window_seconds: int


def parse_rate_limit(text: str) -> RateLimit | None:
    """`30/minute` -> RateLimit(30, 60); `0` -> None (off)."""
    if text.strip() == "0":
        return None
    match = _RATE_RE.match(text)
    if match is None:
        raise ValueError("expected N/second, N/minute, N/hour, N/day or 0")
    count = int(match.group(1))
    if count == 0:
        return None
    return RateLimit(count, _RATE_UNITS[match.group(2)])


_INTERVAL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL_RE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")


def parse_interval(text: str) -> int | None:
    """`6h` -> 21600 seconds, `1d` -> 86400, `off` -> None."""
    if text.strip().lower() == "off":
        return None
    match = _INTERVAL_RE.match(text.lower())
    if match is None or int(match.group(1)) == 0:
        raise ValueError("expected off or an interval such as 30m, 6h or 1d")
    return int(match.group(1)) * _INTERVAL_UNITS[match.group(2)]


def _url_template(value: str) -> str:
    if "{video_id}" not in value:
        raise ValueError("must contain {video_id}")
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


def _aws(name: str) -> AliasChoices:
    # the name every S3 tool reads, and the field's own (Settings(aws_region=...))
    return AliasChoices(name, name.lower())


_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class BucketPlace:
    bucket: str
    prefix: str  # "" or ending in "/"


def parse_storage(text: str) -> BucketPlace | None:
    """`file` -> None (the media dir); `s3://bucket/some/prefix` -> its bucket and prefix."""
    if text.strip() == "file":
        return None
    scheme, sep, rest = text.strip().partition("://")
    if not sep or scheme != "s3":
        raise ValueError("expected file or s3://BUCKET/PREFIX")
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise ValueError(f"{bucket!r} is not a bucket name (3-63 of a-z, 0-9, . and -)")
    prefix = prefix.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ValueError(f"{prefix!r} is not a key prefix")
    return BucketPlace(bucket, f"{prefix}/" if prefix else "")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        frozen=True,
        # the AWS_* settings are read by their own names, and given by field name in code
        populate_by_name=True,
    )

    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    media_dir: Path = Path("./media")
    thumbnail_url: str = "https://img.youtube.com/vi/{video_id}/0.jpg"
    source_url: str = "https://www.youtube.com/watch?v={video_id}"
    ffmpeg: str | None = None
    result_ttl: Seconds = 3600
    exists_ttl: Seconds = 86400
    missing_ttl: Seconds = 3600
    max_duration: Seconds = 7200
    job_timeout: Seconds = 900
    max_jobs: int = Field(default_factory=lambda: os.cpu_count() or 1, gt=0)
    rate_limit: str = "30/minute"
    # Beyond the SPEC's table: knobs an operator needs, documented in the README.
    probe_timeout: float = Field(5.0, gt=0)
    poll_delay: float = Field(0.05, gt=0)
    cookies_file: Path | None = None
    proxy: str | None = None
    trusted_proxies: str = ""
    log_format: str = Field("text", pattern="^(text|json)$")
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    # Fair queueing (ytmp3.cache.fair): conversions one client may have waiting or running
    # (beyond: 429; 0 = no bound), and how many of them sit in the workers' queue at once
    # (0 = the live workers' slots).
    max_pending: int = Field(50, ge=0)
    queue_window: int = Field(0, ge=0)
    # a download that sends no audio for this long is cut and tried again (DOWNLOAD_FAILED)
    stall_timeout: float = Field(30.0, gt=0)
    # SIGTERM: what in-flight requests (API) and running conversions (worker) get to finish
    stop_grace: int = Field(30, ge=0)
    # a long audio converted alone may be encoded on several cores (README: Parallel encoding)
    parallel_encode: bool = True
    # where `ytmp3 worker` serves its own /metrics (on YTMP3_HOST); unset: not served
    metrics_port: int | None = Field(None, ge=1, le=65535)
    # Keeping up with YouTube (SPEC): live yt-dlp upgrades into the data directory
    ytdlp_update: str = "off"
    # what outlives the process: yt-dlp installs, the embedded mode's keys
    data_dir: Path = Path("./data")
    # an index's URL, or a local folder of wheels
    ytdlp_index: str = "https://pypi.org/simple"
    # Access (SPEC "Access"): off, or keys for every route but health, the page and sign-in
    auth: Literal["off", "keys"] = "off"
    # wrong keys one client address may try per window before it gets 429
    auth_fail_limit: str = "10/minute"
    # Disk budget (SPEC "Access"): finished MP3s at most this much (least recently
    # downloaded go first); new conversions refused (507) under min_free_disk free
    max_disk: ByteSize | None = None
    min_free_disk: ByteSize = ByteSize(10**9)
    # `ytmp3 get`: the server to use (unset: convert in-process) and the key it asks for
    server: str | None = None
    key: SecretStr | None = None
    # What one client may hold of an API process (README "Guarantees"): open event
    # streams per client address (0: no bound)...
    streams_per_client: int = Field(20, ge=0)
    # ...and what the HTTP server holds at most: open connections (clamped to what the
    # file limit allows), seconds to send a whole request, seconds an idle keep-alive
    # connection stays, request line and headers' total size, the listen queue.
    max_connections: int = Field(10000, ge=1)
    read_timeout: float = Field(10.0, gt=0)
    keepalive_timeout: int = Field(5, ge=1)
    max_header_bytes: int = Field(32768, ge=1024, le=1048576)
    backlog: int = Field(2048, ge=1)
    # Playlists and albums (SPEC): what the worker gives yt-dlp to list one, and how many
    # of its entries are taken
    playlist_url: str = "https://www.youtube.com/playlist?list={playlist_id}"
    playlist_max: int = Field(200, gt=0)
    # Storage on many hosts (SPEC): `file` (YTMP3_MEDIA_DIR) or s3://BUCKET/PREFIX on any
    # S3-compatible service; there, YTMP3_MEDIA_DIR is only a worker's jobs in progress
    storage: str = "file"
    s3_endpoint: str | None = None
    s3_presign: bool = False
    aws_access_key_id: str | None = Field(None, validation_alias=_aws("AWS_ACCESS_KEY_ID"))
    aws_secret_access_key: SecretStr | None = Field(
        None, validation_alias=_aws("AWS_SECRET_ACCESS_KEY")
    )
    aws_region: str | None = Field(None, validation_alias=_aws("AWS_REGION"))

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        # An empty YTMP3_REDIS_URL means unset (embedded mode), as the `or None` below says.
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("server")
    @classmethod
    def _server_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @field_validator("thumbnail_url", "source_url")
    @classmethod
    def _template(cls, value: str) -> str:
        return _url_template(value)

    @field_validator("playlist_url")
    @classmethod
    def _playlist_template(cls, value: str) -> str:
        if "{playlist_id}" not in value:
            raise ValueError("must contain {playlist_id}")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("rate_limit", "auth_fail_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate_limit(value)
        return value

    @field_validator("ytdlp_update")
    @classmethod
    def _interval(cls, value: str) -> str:
        parse_interval(value)
        return value

    @field_validator("ytdlp_index")
    @classmethod
    def _index(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be an index's URL or a folder of wheels")
        if "://" not in value and not Path(value).is_dir():
            raise ValueError(f"{value!r} is neither a URL nor a folder")
        return value.strip()

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        for item in _split(value):
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("ffmpeg")
    @classmethod
    def _ffmpeg_exists(cls, value: str | None) -> str | None:
        if value and shutil.which(value) is None:
            raise ValueError(f"no executable at {value!r}")
        return value or None

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if parse_storage(value) is not None and importlib.util.find_spec("obstore") is None:
            raise ValueError("a bucket needs the s3 extra: pip install 'ytmp3[s3]'")
        return value.strip()

    @field_validator("s3_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else None

    @field_validator("s3_presign")
    @classmethod
    def _presign_needs_a_bucket(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("storage", "file") == "file":
            raise ValueError("presigned URLs need YTMP3_STORAGE=s3://BUCKET/PREFIX")
        return value

    @cached_property
    def bucket(self) -> BucketPlace | None:
        """Where the MP3s are when they are in a bucket; None: the media dir."""
        return parse_storage(self.storage)

    @property
    def embedded(self) -> bool:
        return self.redis_url is None

    @property
    def stream_bound(self) -> int | None:
        return self.streams_per_client or None

    @cached_property
    def rate(self) -> RateLimit | None:
        return parse_rate_limit(self.rate_limit)

    @property
    def loopback_only(self) -> bool:
        """Whether the API listens on this machine alone (no one else can reach it)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name: it may be any address

    @cached_property
    def auth_failures(self) -> RateLimit:
        # "0" would turn the brute-force limit off: not offered
        return parse_rate_limit(self.auth_fail_limit) or RateLimit(10, 60)

    @cached_property
    def ytdlp_update_seconds(self) -> int | None:
        """How often a worker looks for a newer yt-dlp; None: never by itself."""
        return parse_interval(self.ytdlp_update)

    @cached_property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(i, strict=False) for i in _split(self.trusted_proxies))

    @cached_property
    def ffmpeg_path(self) -> str:
        """The ffmpeg on PATH, else the binary imageio-ffmpeg ships."""
        if self.ffmpeg:
            return self.ffmpeg
        found = shutil.which("ffmpeg")
        if found:
            return found
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class SettingsError(Exception):
    """A bad setting, worded as the one line the program prints before it stops."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]).upper() if error["loc"] else "?"
        message = str(error["msg"]).removeprefix("Value error, ")
        name = field if field.startswith("AWS_") else f"{ENV_PREFIX}{field}"
        raise SettingsError(f"{name}: {message}") from None
