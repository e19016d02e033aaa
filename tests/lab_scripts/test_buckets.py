"""Archive-then-empty under moto: every version of every legal key survives, nothing unarchived is deleted, and
the archive restores to S3 byte for byte."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from lab_scripts import buckets
from tests.lab_scripts.conftest import versioned_bucket

BUCKET = "ml101-alice-123456789012-us-east-1"
RESTORED = "ml101-alice-restored"

# Keys that no file system can hold side by side, or at all, as paths.
AWKWARD = {
    "data": b"a file named like a folder",
    "data/train.csv": b"x,y\n1,2\n",
    "runs//1/log.txt": b"double slash",
    "runs/1/log.txt": b"single slash",
    "ckpt/": b"a non-empty object whose key ends in a slash",
    "empty-folder/": b"",
    "notes/r\u00e9sum\u00e9 \u6f22\u5b57.txt": "unicode".encode(),
    "my work/final version (2).py": b"print('spaces')",
    "../escape.txt": b"dot dot",
    "/leading-slash": b"leading",
    "percent%20and+plus": b"url-ish",
    "long/" + "k" * 1000: b"a 1,005-character key",
}
VERSIONS = [b"v1: first try", b"v2: better", b"v3: final"]


@pytest.fixture
def s3(aws: Any) -> Any:
    return versioned_bucket(aws, BUCKET)


def fill(s3: Any) -> None:
    for key, body in AWKWARD.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    for body in VERSIONS:
        s3.put_object(Bucket=BUCKET, Key="model.py", Body=body)


def all_versions(s3: Any, bucket: str) -> dict[str, list[bytes | None]]:
    """key -> every version's bytes oldest first, None for a delete marker (in S3's own listing order)."""
    found: dict[str, list[bytes | None]] = {}
    for row in buckets._listing(s3, bucket):
        body = None if row["delete_marker"] else s3.get_object(Bucket=bucket, Key=row["Key"],
                                                                VersionId=row["VersionId"])["Body"].read()
        found.setdefault(row["Key"], []).insert(0, body)
    return found


def test_versions_and_markers_merge_in_the_pages_element_order() -> None:
    same_second = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)

    def row(version: str, latest: bool = False) -> dict[str, Any]:
        return {"Key": "a", "VersionId": version, "IsLatest": latest, "LastModified": same_second}

    versions, markers = [row("v3", True), row("v2"), row("v1")], [row("m2"), row("m1")]
    order = ["Version", "DeleteMarker", "Version", "DeleteMarker", "Version"]  # as AWS lists them, newest first
    merged = buckets._merge(versions, markers, order)
    assert [r["VersionId"] for r in merged] == ["v3", "m2", "v2", "m1", "v1"]
    latest_marker = buckets._merge([row("v1")], [row("m1", True)], ["Version", "DeleteMarker"])  # moto's order
    assert [r["VersionId"] for r in latest_marker] == ["m1", "v1"]


def test_every_version_of_every_legal_key_round_trips(s3: Any, tmp_path: Path) -> None:
    fill(s3)
    before = all_versions(s3, BUCKET)
    result = buckets.archive_and_empty(s3, BUCKET, tmp_path)
    assert (result.files, result.versions, result.delete_markers) == (len(AWKWARD) + 1, len(AWKWARD) + 3, 0)
    assert result.deleted == len(AWKWARD) + 3 and result.late == 0
    assert s3.list_object_versions(Bucket=BUCKET).get("Versions") is None
    assert result.manifest is not None and sorted(p.name for p in result.manifest.parent.iterdir()) == [
        "manifest.json", "objects"]
    versioned_bucket(lambda _: s3, RESTORED)
    restored = buckets.restore_archive(s3, result.manifest, RESTORED)
    assert (restored.versions, restored.delete_markers) == (len(AWKWARD) + 3, 0)
    assert all_versions(s3, RESTORED) == before
    assert s3.get_object(Bucket=RESTORED, Key="model.py")["Body"].read() == b"v3: final"
    assert s3.get_object(Bucket=RESTORED, Key="data")["Body"].read() == AWKWARD["data"]


def test_manifest_records_each_version_with_checksum(s3: Any, tmp_path: Path) -> None:
    fill(s3)
    result = buckets.archive_bucket(s3, BUCKET, tmp_path)
    manifest = json.loads(result.manifest.read_text())  # type: ignore[union-attr]
    model = sorted((e for e in manifest["versions"] if e["key"] == "model.py"), key=lambda e: e["seq"])
    assert [e["sha256"] for e in model] == [hashlib.sha256(body).hexdigest() for body in VERSIONS]
    assert [e["is_latest"] for e in model] == [False, False, True]
    assert all(e["version_id"] and e["last_modified"] and e["size"] == len(b) for e, b in zip(model, VERSIONS))
    # The format-1 summary of current objects stays for older readers (labctl's archived-files count).
    assert {o["key"] for o in manifest["objects"]} == set(AWKWARD) | {"model.py"}
    assert result.stored_bytes == sum(map(len, AWKWARD.values())) + sum(map(len, VERSIONS))


def test_delete_marker_is_archived_and_restored_as_a_delete(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="gone.txt", Body=b"deleted by the student")
    s3.delete_object(Bucket=BUCKET, Key="gone.txt")
    s3.put_object(Bucket=BUCKET, Key="kept.txt", Body=b"here")
    result = buckets.archive_and_empty(s3, BUCKET, tmp_path)
    assert (result.files, result.versions, result.delete_markers) == (1, 2, 1)
    assert result.manifest is not None
    versioned_bucket(lambda _: s3, RESTORED)
    buckets.restore_archive(s3, result.manifest, RESTORED)
    assert all_versions(s3, RESTORED) == {"gone.txt": [b"deleted by the student", None], "kept.txt": [b"here"]}
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=RESTORED)["Contents"]] == ["kept.txt"]


def test_restore_latest_only_into_an_unversioned_bucket(s3: Any, tmp_path: Path) -> None:
    fill(s3)
    s3.delete_object(Bucket=BUCKET, Key="data")
    result = buckets.archive_bucket(s3, BUCKET, tmp_path)
    assert result.manifest is not None
    s3.create_bucket(Bucket=RESTORED)
    with pytest.raises(buckets.ArchiveError, match="not versioned"):
        buckets.restore_archive(s3, result.manifest, RESTORED)
    restored = buckets.restore_archive(s3, result.manifest, RESTORED, versions="latest")
    assert restored.versions == len(AWKWARD)  # every key once, `data` deleted
    assert s3.get_object(Bucket=RESTORED, Key="model.py")["Body"].read() == b"v3: final"


def test_restore_refuses_a_bucket_that_holds_archived_keys(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"1")
    result = buckets.archive_bucket(s3, BUCKET, tmp_path)
    with pytest.raises(buckets.ArchiveError, match="already holds 1 versions"):
        buckets.restore_archive(s3, result.manifest, BUCKET)  # type: ignore[arg-type]


def test_a_version_written_after_the_listing_is_never_deleted_unarchived(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"before")
    result = buckets.archive_bucket(s3, BUCKET, tmp_path)
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"after the listing")
    s3.put_object(Bucket=BUCKET, Key="b", Body=b"new key")
    assert result.manifest is not None
    assert buckets.delete_archived(s3, BUCKET, result.manifest) == (1, 2)
    assert sorted(o["Key"] for o in s3.list_object_versions(Bucket=BUCKET)["Versions"]) == ["a", "b"]


def test_late_writes_are_archived_in_a_further_round(s3: Any, tmp_path: Path, monkeypatch: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"before")
    original, calls = buckets.archive_bucket, []

    def writer_during_archive(client: Any, bucket: str, destination: Path) -> buckets.ArchiveResult:
        result = original(client, bucket, destination)
        if not calls:
            client.put_object(Bucket=bucket, Key="a", Body=b"saved while the archive ran")
        calls.append(1)
        return result

    monkeypatch.setattr(buckets, "archive_bucket", writer_during_archive)
    result = buckets.archive_and_empty(s3, BUCKET, tmp_path)
    assert (result.versions, result.late, result.deleted, len(calls)) == (2, 1, 2, 2)
    assert s3.list_object_versions(Bucket=BUCKET).get("Versions") is None
    versioned_bucket(lambda _: s3, RESTORED)
    buckets.restore_archive(s3, result.manifest, RESTORED)  # type: ignore[arg-type]
    assert all_versions(s3, RESTORED) == {"a": [b"before", b"saved while the archive ran"]}


def test_a_bucket_that_keeps_receiving_writes_is_kept(s3: Any, tmp_path: Path, monkeypatch: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"0")
    original = buckets.archive_bucket

    def always_writing(client: Any, bucket: str, destination: Path) -> buckets.ArchiveResult:
        result = original(client, bucket, destination)
        client.put_object(Bucket=bucket, Key="a", Body=b"more")
        return result

    monkeypatch.setattr(buckets, "archive_bucket", always_writing)
    with pytest.raises(buckets.ArchiveError, match="still receives writes"):
        buckets.archive_and_empty(s3, BUCKET, tmp_path)
    assert len(s3.list_object_versions(Bucket=BUCKET)["Versions"]) == 1  # the unarchived one stays


def test_rerun_into_the_same_archive_keeps_what_was_already_deleted(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"first run")
    first = buckets.archive_and_empty(s3, BUCKET, tmp_path)
    s3.put_object(Bucket=BUCKET, Key="b", Body=b"second run")
    second = buckets.archive_and_empty(s3, BUCKET, tmp_path)
    assert first.manifest == second.manifest and (second.files, second.deleted) == (2, 1)


def test_empty_removes_all_versions_and_delete_markers(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"1")
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"2")
    s3.delete_object(Bucket=BUCKET, Key="a")
    assert buckets.empty_bucket(s3, BUCKET) == 3
    listing = s3.list_object_versions(Bucket=BUCKET)
    assert not listing.get("Versions") and not listing.get("DeleteMarkers")
    s3.delete_bucket(Bucket=BUCKET)


def test_archived_delete_and_empty_take_more_than_one_batch(s3: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(buckets, "DELETE_BATCH", 2)  # AWS's limit is 1,000 keys per DeleteObjects
    for index in range(5):
        s3.put_object(Bucket=BUCKET, Key=f"k/{index}", Body=b"same bytes")
    result = buckets.archive_and_empty(s3, BUCKET, tmp_path)
    assert (result.versions, result.deleted, result.stored_bytes) == (5, 5, 10)
    for index in range(5):
        s3.put_object(Bucket=BUCKET, Key=f"k/{index}", Body=b"")
    assert buckets.empty_bucket(s3, BUCKET) == 5


def test_corrupt_archive_stops_before_anything_is_deleted(s3: Any, tmp_path: Path, monkeypatch: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="work.py", Body=b"print(1)")

    def corrupting_archive(client: Any, bucket: str, destination: Path) -> buckets.ArchiveResult:
        result = original(client, bucket, destination)
        (destination / bucket / "objects" / hashlib.sha256(b"print(1)").hexdigest()).write_bytes(b"truncated")
        return result

    original = buckets.archive_bucket
    monkeypatch.setattr(buckets, "archive_bucket", corrupting_archive)
    with pytest.raises(buckets.ArchiveError, match="missing or corrupt"):
        buckets.archive_and_empty(s3, BUCKET, tmp_path)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


def test_format_1_archives_still_verify_and_restore(s3: Any, tmp_path: Path) -> None:
    root = tmp_path / BUCKET
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "lab1.ipynb").write_bytes(b"{}")
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps({"bucket": BUCKET, "objects": [
        {"key": "notebooks/lab1.ipynb", "bytes": 2, "sha256": hashlib.sha256(b"{}").hexdigest()}]}))
    buckets.verify_archive(manifest)
    s3.create_bucket(Bucket=RESTORED)
    assert buckets.restore_archive(s3, manifest, RESTORED, versions="latest").versions == 1


def test_no_archive_means_just_empty(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"1")
    result = buckets.archive_and_empty(s3, BUCKET, None)
    assert (result.files, result.manifest, result.deleted) == (0, None, 1)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
