"""Where finished MP3s live: the media dir, or a bucket (YTMP3_STORAGE)."""

from __future__ import annotations

from ytmp3.config import Settings
from ytmp3.storage.base import Storage


def open_storage(settings: Settings) -> Storage:
    """The storage the settings name; a bucket's client (obstore) is loaded only for one."""
    if settings.bucket is None:
        from ytmp3.storage.files import Files

        return Files(settings.media_dir)
    from ytmp3.storage.s3 import Bucket

    return Bucket(settings, settings.bucket)
