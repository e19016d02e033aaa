"""Archive a student's lab bucket, then empty it so CloudFormation can delete it. Nothing lost, nothing left.

The archive keeps every version of every key, current and noncurrent, and notes delete markers, so that
`restore_archive` can put the bucket back exactly. S3 keys are any UTF-8 up to 1,024 bytes: `data` and
`data/train.csv` together, `runs//1` beside `runs/1`, a non-empty `ckpt/`, `../x`. None of them is a safe local path,
so objects are stored content-addressed (`objects/<sha256>`) and the manifest maps each (key, version) to its file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from xml.etree import ElementTree

FORMAT = 2
OBJECTS = "objects"
MANIFEST = "manifest.json"
# DeleteObjects takes at most 1,000 keys.
DELETE_BATCH = 1000
# Rounds of archive-then-delete before giving up on a bucket that keeps receiving writes (the freeze failed).
MAX_ROUNDS = 3
_CHUNK = 1 << 20
DOWNLOADS = 8


@dataclass(frozen=True)
class ArchiveResult:
    """`files`/`bytes` count the current objects (what a student sees); the rest counts what else was kept."""

    bucket: str
    files: int
    bytes: int
    manifest: Path | None
    versions: int = 0  # object versions archived, current and noncurrent
    delete_markers: int = 0
    stored_bytes: int = 0  # on disk: identical versions are stored once
    deleted: int = 0  # versions and delete markers removed from the bucket after the archive was verified
    late: int = 0  # versions that appeared after the first listing, archived in a later round


@dataclass(frozen=True)
class RestoreResult:
    bucket: str
    versions: int
    delete_markers: int
    bytes: int


class ArchiveError(RuntimeError):
    """The archive is incomplete, so the bucket must not be emptied."""


def _safe_path(root: Path, key: str) -> Path:
    """Where format-1 archives (current versions at their key's path) kept a key; read only by verify/restore."""
    parts = [part for part in PurePosixPath(key).parts if part not in ("", "/", ".", "..")]
    if not parts or key.endswith("/"):
        raise ArchiveError(f"object key {key!r} cannot be archived as a file")
    return root.joinpath(*parts)


def _listing(s3: Any, bucket: str) -> Iterator[dict[str, Any]]:
    """Every version and delete marker in S3's order (each key's newest first), marked with `delete_marker`.

    botocore parses a page's versions and delete markers into two lists; listing times have one-second
    resolution, so they cannot put a marker back between versions saved in the same second. The raw page's
    element order can (AWS interleaves them; moto lists markers last): it is read before parsing.
    """
    captured: dict[int, list[str]] = {}

    def element_order(response_dict: dict[str, Any], **_: Any) -> None:
        try:
            root = ElementTree.fromstring(response_dict.get("body") or b"")
        except ElementTree.ParseError:
            return
        tags = [child.tag.rsplit("}", 1)[-1] for child in root]
        captured[threading.get_ident()] = [tag for tag in tags if tag in ("Version", "DeleteMarker")]

    event, handler_id = "before-parse.s3.ListObjectVersions", f"labkit-order-{id(captured)}"
    s3.meta.events.register(event, element_order, unique_id=handler_id)
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            versions = [{**v, "delete_marker": False} for v in page.get("Versions", [])]
            markers = [{**m, "delete_marker": True} for m in page.get("DeleteMarkers", [])]
            yield from _merge(versions, markers, captured.pop(threading.get_ident(), []))
    finally:
        s3.meta.events.unregister(event, unique_id=handler_id)


def _merge(versions: list[dict[str, Any]], markers: list[dict[str, Any]], order: list[str]) -> list[dict[str, Any]]:
    """One page's versions and markers in the page's element order, then newest first per key by time and
    `IsLatest` (a stable sort: rows with equal times keep the page's order)."""
    if len(order) == len(versions) + len(markers) and order.count("Version") == len(versions):
        queues = {"Version": iter(versions), "DeleteMarker": iter(markers)}
        rows = [next(queues[tag]) for tag in order]
    else:  # no raw page seen (a stubbed client)
        rows = versions + markers
    return sorted(rows, key=lambda row: (row["Key"], not row.get("IsLatest"), -row["LastModified"].timestamp()))


def _load(manifest: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"archive manifest {manifest} cannot be read: {exc}") from None
    return data


def _write_manifest(manifest: Path, data: dict[str, Any]) -> None:
    """Atomically: a manifest is what allows deleting, so a half-written one must never exist."""
    tmp = manifest.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, manifest)


def _download(s3: Any, bucket: str, entry: dict[str, Any], store: Path) -> dict[str, Any]:
    """Stream one version to objects/<sha256>; returns its manifest fields."""
    response = s3.get_object(Bucket=bucket, Key=entry["key"], VersionId=entry["version_id"])
    digest, size = hashlib.sha256(), 0
    with tempfile.NamedTemporaryFile(dir=store, prefix=".part-", delete=False) as handle:
        for chunk in iter(lambda: response["Body"].read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
            handle.write(chunk)
    sha = digest.hexdigest()
    target = store / sha
    if target.is_file():
        os.unlink(handle.name)  # the same bytes are archived already (another version or key)
    else:
        os.replace(handle.name, target)
    fields = {"size": size, "sha256": sha, "object": f"{OBJECTS}/{sha}",
              "content_type": response.get("ContentType", "binary/octet-stream")}
    if response.get("Metadata"):
        fields["metadata"] = response["Metadata"]
    return fields


def _summary(data: dict[str, Any]) -> None:
    """Recompute each key's latest version, and the format-1 `objects` list (current objects) older readers use."""
    newest: dict[str, dict[str, Any]] = {}
    for entry in data["versions"]:
        if entry["key"] not in newest or entry["seq"] > newest[entry["key"]]["seq"]:
            newest[entry["key"]] = entry
    for entry in data["versions"]:
        entry["is_latest"] = newest[entry["key"]] is entry
    data["objects"] = [{"key": e["key"], "bytes": e["size"], "sha256": e["sha256"], "version_id": e["version_id"]}
                       for e in newest.values() if not e["delete_marker"]]


def _result(bucket: str, manifest: Path | None, data: dict[str, Any], **counts: int) -> ArchiveResult:
    if manifest is None:
        return ArchiveResult(bucket, 0, 0, None, **counts)
    versions = [e for e in data["versions"] if not e["delete_marker"]]
    stored = {e["sha256"]: e["size"] for e in versions}
    return ArchiveResult(bucket, len(data["objects"]), sum(o["bytes"] for o in data["objects"]), manifest,
                         versions=len(versions), delete_markers=len(data["versions"]) - len(versions),
                         stored_bytes=sum(stored.values()), **counts)


def archive_bucket(s3: Any, bucket: str, destination: Path) -> ArchiveResult:
    """Download every version not yet in destination/<bucket>/manifest.json and record it there.

    Run again into the same destination (a resumed teardown, or a later round), it adds only what is new: versions
    already archived are kept in the manifest even when the bucket no longer holds them.
    """
    root = destination / bucket
    manifest = root / MANIFEST
    data: dict[str, Any] = {"format": FORMAT, "bucket": bucket, "versions": []}
    if manifest.is_file():
        data = _load(manifest)
        if data.get("format") != FORMAT or data.get("bucket") != bucket:
            raise ArchiveError(f"{manifest} is not a format-{FORMAT} archive of s3://{bucket}; archive elsewhere")
    seen = {(e["key"], e["version_id"]) for e in data["versions"]}
    top: dict[str, int] = {}
    for entry in data["versions"]:
        top[entry["key"]] = max(top.get(entry["key"], 0), entry["seq"])
    new: dict[str, list[dict[str, Any]]] = {}
    for row in _listing(s3, bucket):
        if (row["Key"], row["VersionId"]) not in seen:
            new.setdefault(row["Key"], []).append(row)
    if not new and not data["versions"]:
        return ArchiveResult(bucket, 0, 0, None)
    store = root / OBJECTS
    store.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    for key, rows in new.items():
        # Listed newest first; versions new since the last round are newer than every one archived before.
        for offset, row in enumerate(reversed(rows), start=1):
            entries.append({
                "key": key, "version_id": row["VersionId"], "seq": top.get(key, 0) + offset,
                "last_modified": row["LastModified"].isoformat(), "delete_marker": row["delete_marker"],
                "is_latest": bool(row.get("IsLatest")), "size": 0, "sha256": None,
            })
    wanted = [entry for entry in entries if not entry["delete_marker"]]
    # GETs in parallel: one at a time, 30 students' buckets of small files take minutes at AWS's latency.
    with ThreadPoolExecutor(DOWNLOADS) as pool:
        for entry, fields in zip(wanted, pool.map(lambda e: _download(s3, bucket, e, store), wanted)):
            entry.update(fields)
    data["versions"] += entries
    _summary(data)
    _write_manifest(manifest, data)
    return _result(bucket, manifest, data)


def verify_archive(manifest: Path) -> None:
    """Raise ArchiveError unless every archived version is on disk with its recorded checksum."""
    data = _load(manifest)
    if "versions" not in data:  # format 1: current versions stored at their key's path
        for entry in data["objects"]:
            path = _safe_path(manifest.parent, entry["key"])
            if not path.is_file() or _sha256(path) != entry["sha256"]:
                raise ArchiveError(f"archive of s3://{data['bucket']}/{entry['key']} is missing or corrupt")
        return
    checked: dict[str, bool] = {}
    for entry in data["versions"]:
        if entry["delete_marker"]:
            continue
        name = entry["object"]
        if name not in checked:
            path = manifest.parent / name
            checked[name] = (PurePosixPath(name).parent == PurePosixPath(OBJECTS) and path.is_file()
                             and _sha256(path) == entry["sha256"] == path.name)
        if not checked[name]:
            raise ArchiveError(f"archive of s3://{data['bucket']}/{entry['key']} (version {entry['version_id']}) "
                               "is missing or corrupt")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _delete(s3: Any, bucket: str, batch: list[dict[str, str]]) -> int:
    for start in range(0, len(batch), DELETE_BATCH):
        part = batch[start:start + DELETE_BATCH]
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": part, "Quiet": True})
        if response.get("Errors"):
            first = response["Errors"][0]
            raise ArchiveError(f"could not delete s3://{bucket}/{first['Key']}: {first.get('Message')}")
    return len(batch)


def delete_archived(s3: Any, bucket: str, manifest: Path) -> tuple[int, int]:
    """Delete the versions the verified manifest holds; returns (deleted, left): left are versions the bucket
    holds that the archive does not (written after its listing), never deleted here."""
    verify_archive(manifest)
    archived = {(e["key"], e["version_id"]) for e in _load(manifest)["versions"]}
    batch, left = [], 0
    for row in _listing(s3, bucket):
        if (row["Key"], row["VersionId"]) in archived:
            batch.append({"Key": row["Key"], "VersionId": row["VersionId"]})
        else:
            left += 1
    return _delete(s3, bucket, batch), left


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker, unarchived (`--no-archive`); returns how many."""
    deleted = 0
    while True:
        # Re-list from the start each round: paging on while deleting skips what moved past the marker.
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=DELETE_BATCH)
        batch = [{"Key": item["Key"], "VersionId": item["VersionId"]}
                 for item in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if not batch:
            return deleted
        deleted += _delete(s3, bucket, batch)


def archive_and_empty(s3: Any, bucket: str, destination: Path | None) -> ArchiveResult:
    """Archive (unless destination is None), verify, then delete only what the archive holds.

    Versions written after a listing (write access was not cut) are archived in a further round; if the bucket
    still receives writes after MAX_ROUNDS, ArchiveError: what is unarchived stays in the bucket.
    """
    if destination is None:
        return ArchiveResult(bucket, 0, 0, None, deleted=empty_bucket(s3, bucket))
    deleted = late = previous = 0
    for round_ in range(MAX_ROUNDS):
        result = archive_bucket(s3, bucket, destination)
        if result.manifest is None:
            return result
        if round_:
            late += result.versions + result.delete_markers - previous
        previous = result.versions + result.delete_markers
        removed, left = delete_archived(s3, bucket, result.manifest)
        deleted += removed
        if not left:
            return replace(result, deleted=deleted, late=late)
    raise ArchiveError(f"s3://{bucket} still receives writes after {MAX_ROUNDS} archive rounds ({left} versions "
                       "not archived, kept in the bucket); cut students' write access and run again")


def restore_archive(s3: Any, manifest: Path, bucket: str, *,
                    versions: Literal["all", "latest"] = "all") -> RestoreResult:
    """Put an archive back into `bucket`, which must hold none of its keys.

    "all" replays each key's versions oldest first (so the latest is latest again; a delete marker is replayed
    as a delete) and needs a versioned bucket; "latest" writes each key's current object only.
    """
    if versions not in ("all", "latest"):
        raise ArchiveError(f"versions must be 'all' or 'latest', not {versions!r}")
    verify_archive(manifest)
    data = _load(manifest)
    if "versions" not in data:  # format 1 holds current versions only
        entries = [{"key": o["key"], "seq": 1, "delete_marker": False, "size": o["bytes"], "sha256": o["sha256"],
                    "is_latest": True, "path": _safe_path(manifest.parent, o["key"])} for o in data["objects"]]
    else:
        entries = [{**e, "path": manifest.parent / e["object"] if not e["delete_marker"] else None}
                   for e in data["versions"]]
    if versions == "latest":
        entries = [e for e in entries if e["is_latest"] and not e["delete_marker"]]
    elif s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        raise ArchiveError(f"s3://{bucket} is not versioned: restoring every version needs versioning "
                           "(enable it, or restore the latest versions only)")
    keys = {e["key"] for e in entries}
    held = sum(1 for row in _listing(s3, bucket) if row["Key"] in keys)
    if held:
        raise ArchiveError(f"s3://{bucket} already holds {held} versions of the archive's keys; restore into an "
                           "empty bucket")
    restored = markers = size = 0
    for entry in sorted(entries, key=lambda e: (e["key"], e["seq"])):
        if entry["delete_marker"]:
            s3.delete_object(Bucket=bucket, Key=entry["key"])
            markers += 1
            continue
        extra: dict[str, Any] = {"ContentType": entry.get("content_type", "binary/octet-stream")}
        if entry.get("metadata"):
            extra["Metadata"] = entry["metadata"]
        with entry["path"].open("rb") as handle:
            s3.upload_fileobj(handle, bucket, entry["key"], ExtraArgs=extra)
        restored += 1
        size += entry["size"]
    return RestoreResult(bucket, restored, markers, size)


def read_archived(manifest: Path, key: str, version_id: str | None = None) -> bytes:
    """The archived bytes of `key` (its latest version, or `version_id`): for checks and for a single file."""
    for entry in _load(manifest).get("versions", []):
        if entry["key"] == key and not entry["delete_marker"] and (
                entry["version_id"] == version_id if version_id else entry["is_latest"]):
            return (manifest.parent / entry["object"]).read_bytes()
    raise ArchiveError(f"{manifest} holds no {'version ' + version_id if version_id else 'current version'} "
                       f"of {key!r}")
