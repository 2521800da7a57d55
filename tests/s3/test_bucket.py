"""The bucket storage (ytmp3.storage.s3) against a real S3 server (SeaweedFS): an MP3 put
whole, read in ranges, listed, presigned, deleted; its settings' bad values refused."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ytmp3.config import Settings, SettingsError, load_settings
from ytmp3.storage import open_storage
from ytmp3.storage.s3 import PART, Bucket

JOB = "dQw4w9WgXcQ-192-abcdef12"
OTHER = "oHg5SJYRHA0-128-0badf00d"


async def test_an_mp3_put_whole_is_read_in_ranges_listed_signed_and_deleted(
    s3_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    storage = open_storage(s3_settings())
    assert isinstance(storage, Bucket)
    assert await storage.stat(JOB) is None and await storage.open(JOB, 0, 1) is None
    # larger than a part: a multipart upload, which the bucket shows only once complete
    data = os.urandom(PART + 12345)
    local = tmp_path / "a.mp3.part"
    local.write_bytes(data)
    await storage.put(JOB, local, disposition='attachment; filename="Song.mp3"')
    assert not local.exists()  # the worker's disk keeps only jobs in progress
    found = await storage.stat(JOB)
    assert found is not None and found.size == len(data) and found.etag
    body = await storage.open(JOB, 100, 200)
    assert body is not None and b"".join([chunk async for chunk in body]) == data[100:200]
    assert b"".join(storage.chunks(JOB, found.size)) == data
    (listed,) = await storage.listing()
    assert (listed.job_id, listed.size) == (JOB, len(data))
    url = await storage.presign(JOB, 60)
    async with httpx.AsyncClient(trust_env=False) as client:
        signed = await client.get(url, headers={"Range": "bytes=0-9"})
        unsigned = await client.get(url.partition("?")[0])
    assert signed.status_code == 206 and signed.content == data[:10]
    assert signed.headers["content-disposition"] == 'attachment; filename="Song.mp3"'
    assert signed.headers["content-type"] == "audio/mpeg"
    assert unsigned.status_code == 403  # the bucket is not public
    await storage.delete([JOB, OTHER])  # one never there: no error
    assert await storage.stat(JOB) is None and await storage.listing() == []


async def test_a_prefix_is_a_place_of_its_own(
    s3_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    one, two = (
        open_storage(s3_settings()),
        open_storage(s3_settings(storage=_sibling(s3_settings()))),
    )
    local = tmp_path / "x"
    local.write_bytes(b"ID3")
    await one.put(JOB, local, disposition="attachment")
    assert await two.stat(JOB) is None and await two.listing() == []
    assert [s.job_id for s in await one.listing()] == [JOB]


def _sibling(settings: Settings) -> str:
    return settings.storage.rstrip("/") + "-other"


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("YTMP3_STORAGE", "s3://Not_A_Bucket/x", "YTMP3_STORAGE: 'Not_A_Bucket' is not a bucket"),
        ("YTMP3_STORAGE", "gs://bucket/x", "YTMP3_STORAGE: expected file or s3://BUCKET/PREFIX"),
        ("YTMP3_STORAGE", "s3://bucket/a/../b", "YTMP3_STORAGE: 'a/../b' is not a key prefix"),
        ("YTMP3_S3_ENDPOINT", "ftp://x", "YTMP3_S3_ENDPOINT: must be an http:// or https:// URL"),
        ("YTMP3_S3_PRESIGN", "perhaps", "YTMP3_S3_PRESIGN: Input should be a valid boolean"),
        ("AWS_REGION", "", ""),  # empty: unset, as the AWS tools read it
    ],
)
def test_a_bad_storage_setting_is_said_in_one_line(
    name: str, value: str, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YTMP3_STORAGE", "s3://bucket/prefix")
    monkeypatch.setenv(name, value)
    if not said:
        assert load_settings(_env_file=None).aws_region in (None, "")
        return
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    assert str(caught.value).startswith(said)


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"YTMP3_STORAGE": "s3://Not_A_Bucket/x"}, "ytmp3: YTMP3_STORAGE: 'Not_A_Bucket' is not"),
        (
            {"YTMP3_S3_PRESIGN": "true"},
            "ytmp3: YTMP3_S3_PRESIGN: presigned URLs need YTMP3_STORAGE",
        ),
    ],
)
def test_a_bad_storage_setting_stops_the_program_with_exit_2(
    env: dict[str, str], said: str, tmp_path: Path
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("YTMP3_", "AWS_"))}
    result = subprocess.run(
        [sys.executable, "-m", "ytmp3", "worker"],
        env={**clean, **env}, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(said), result.stderr
