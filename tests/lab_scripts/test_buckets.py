"""Archive-then-empty under moto: every version goes, nothing unarchived is deleted, keys cannot escape."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from lab_scripts import buckets
from tests.lab_scripts.conftest import versioned_bucket

BUCKET = "ml101-alice-123456789012-us-east-1"


@pytest.fixture
def s3(aws: Any) -> Any:
    return versioned_bucket(aws, BUCKET)


def test_archive_writes_current_versions_with_checksums(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="notebooks/lab1.ipynb", Body=b"old")
    s3.put_object(Bucket=BUCKET, Key="notebooks/lab1.ipynb", Body=b"new")
    s3.put_object(Bucket=BUCKET, Key="data/x.csv", Body=b"1,2\n")
    s3.put_object(Bucket=BUCKET, Key="empty-folder/", Body=b"")
    result = buckets.archive_bucket(s3, BUCKET, tmp_path)
    assert (result.files, result.bytes) == (2, 7)
    assert (tmp_path / BUCKET / "notebooks/lab1.ipynb").read_bytes() == b"new"
    manifest = json.loads(result.manifest.read_text())  # type: ignore[union-attr]
    assert {e["key"]: e["sha256"] for e in manifest["objects"]}["data/x.csv"] == hashlib.sha256(b"1,2\n").hexdigest()


def test_empty_removes_all_versions_and_delete_markers(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"1")
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"2")
    s3.delete_object(Bucket=BUCKET, Key="a")
    assert buckets.empty_bucket(s3, BUCKET) == 3
    listing = s3.list_object_versions(Bucket=BUCKET)
    assert not listing.get("Versions") and not listing.get("DeleteMarkers")
    s3.delete_bucket(Bucket=BUCKET)


def test_empty_handles_more_than_one_delete_batch(s3: Any) -> None:
    for index in range(1005):
        s3.put_object(Bucket=BUCKET, Key=f"k/{index}", Body=b"")
    assert buckets.empty_bucket(s3, BUCKET) == 1005


def test_keys_cannot_escape_the_archive_folder(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="../../escape.txt", Body=b"x")
    buckets.archive_bucket(s3, BUCKET, tmp_path / "archive")
    assert (tmp_path / "archive" / BUCKET / "escape.txt").read_bytes() == b"x"
    assert not (tmp_path / "escape.txt").exists()


def test_corrupt_archive_stops_before_anything_is_deleted(s3: Any, tmp_path: Path, monkeypatch: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="work.py", Body=b"print(1)")

    def corrupting_archive(client: Any, bucket: str, destination: Path) -> buckets.ArchiveResult:
        result = original(client, bucket, destination)
        (destination / bucket / "work.py").write_bytes(b"truncated")
        return result

    original = buckets.archive_bucket
    monkeypatch.setattr(buckets, "archive_bucket", corrupting_archive)
    with pytest.raises(buckets.ArchiveError, match="missing or corrupt"):
        buckets.archive_and_empty(s3, BUCKET, tmp_path)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


def test_no_archive_means_just_empty(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"1")
    result = buckets.archive_and_empty(s3, BUCKET, None)
    assert (result.files, result.manifest) == (0, None)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
