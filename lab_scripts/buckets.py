"""Archive a student's lab bucket, then empty it so CloudFormation can delete it. Nothing lost, nothing left."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any


@dataclass(frozen=True)
class ArchiveResult:
    bucket: str
    files: int
    bytes: int
    manifest: Path | None


class ArchiveError(RuntimeError):
    """The archive is incomplete, so the bucket must not be emptied."""


def _safe_path(root: Path, key: str) -> Path:
    """Local path for an object key; keys like '../x' or '/etc/x' must not escape the archive folder."""
    parts = [part for part in PurePosixPath(key).parts if part not in ("", "/", ".", "..")]
    if not parts or key.endswith("/"):
        raise ArchiveError(f"object key {key!r} cannot be archived as a file")
    return root.joinpath(*parts)


def archive_bucket(s3: Any, bucket: str, destination: Path) -> ArchiveResult:
    """Download the current version of every object, with a manifest of sizes and SHA-256 checksums."""
    root = destination / bucket
    entries = []
    total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/") and obj.get("Size", 0) == 0:
                continue  # "folder" placeholder objects carry no data
            target = _safe_path(root, key)
            target.parent.mkdir(parents=True, exist_ok=True)
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            target.write_bytes(body)
            entries.append({"key": key, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()})
            total += len(body)
    if not entries:
        return ArchiveResult(bucket, 0, 0, None)
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps({"bucket": bucket, "objects": entries}, indent=2))
    return ArchiveResult(bucket, len(entries), total, manifest)


def verify_archive(manifest: Path) -> None:
    """Raise ArchiveError unless every file in the manifest is on disk with its recorded checksum."""
    data = json.loads(manifest.read_text())
    for entry in data["objects"]:
        path = _safe_path(manifest.parent, entry["key"])
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            raise ArchiveError(f"archive of s3://{data['bucket']}/{entry['key']} is missing or corrupt")


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker; returns how many were deleted."""
    deleted = 0
    while True:
        # Re-list from the start each round: paging on while deleting skips what moved past the marker.
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=1000)  # DeleteObjects takes at most 1,000 keys
        batch = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if not batch:
            return deleted
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        if response.get("Errors"):
            first = response["Errors"][0]
            raise ArchiveError(f"could not delete s3://{bucket}/{first['Key']}: {first.get('Message')}")
        deleted += len(batch)


def archive_and_empty(s3: Any, bucket: str, destination: Path | None) -> ArchiveResult:
    """Archive (unless destination is None), verify the archive, then empty the bucket."""
    result = ArchiveResult(bucket, 0, 0, None)
    if destination is not None:
        result = archive_bucket(s3, bucket, destination)
        if result.manifest:
            verify_archive(result.manifest)
    empty_bucket(s3, bucket)
    return result
