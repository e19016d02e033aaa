"""What a plain `cdk destroy` or a failed deploy leaves behind, found and removed without losing a file.

A solo learner's bucket is retained by `cdk destroy` on purpose (their files outlive the stack) under a name the
next deploy does not reuse; a classroom bucket that CloudFormation could not delete stays with its stack in
DELETE_FAILED; a deploy that failed early leaves a stack in REVIEW_IN_PROGRESS or ROLLBACK_COMPLETE, which no
later deploy can update. Each is named here with the command that ends it, so no caller has to show a raw AWS
error for a state it did not expect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from course.naming import TAG_COURSE, TAG_STUDENT, CourseNames
from lab_scripts.buckets import ArchiveResult, archive_and_empty

# Stack states no `cdk deploy` can go on from; the value says why, in words.
STUCK = {
    "REVIEW_IN_PROGRESS": "a deploy stopped before CloudFormation created anything",
    "CREATE_FAILED": "the first deploy failed",
    "ROLLBACK_COMPLETE": "the first deploy failed and was rolled back; CloudFormation cannot update it",
    "ROLLBACK_FAILED": "the first deploy failed and its rollback failed too",
    "DELETE_FAILED": "a delete stopped: what it could not delete (often a bucket holding files) is still there",
    "UPDATE_ROLLBACK_FAILED": "an update failed and its rollback failed too",
}


@dataclass(frozen=True)
class KeptBucket:
    """A course bucket no live stack holds: kept by `cdk destroy` (solo) or by a stack deleted around it."""

    name: str
    # The student (`me` in solo mode) whose bucket it is, or None for a class bucket (LabRekognition's uploads).
    student: str | None
    files: int
    bytes: int


@dataclass(frozen=True)
class StuckStack:
    name: str
    status: str
    reason: str
    # Buckets the stack still holds (DELETE_FAILED): archived and emptied before it is deleted again.
    buckets: tuple[str, ...] = ()


@dataclass(frozen=True)
class LeftBehind:
    buckets: tuple[KeptBucket, ...]
    stacks: tuple[StuckStack, ...]

    @property
    def empty(self) -> bool:
        return not self.buckets and not self.stacks

    def lines(self, fix: str = "labctl teardown") -> list[str]:
        """One line per thing left behind, each ending in what removes it (`fix`, the caller's command)."""
        out = [f"bucket {b.name}: kept by cdk destroy ({b.files} files, {b.bytes} bytes) - {fix} archives and "
               f"deletes it" for b in self.buckets]
        out += [f"stack {s.name}: {s.status} ({s.reason}) - {fix} deletes it" for s in self.stacks]
        return out


def _bucket_pattern(names: CourseNames) -> re.Pattern[str]:
    # `<course>-<owner>-<account>-<region>` (classroom, LabRekognition) or the same plus `-<8 hex>` (solo kept).
    return re.compile(rf"^{re.escape(names.course)}-(?P<owner>[a-z0-9-]+?)-{names.account}-"
                      rf"{re.escape(names.region)}(?:-[0-9a-f]{{8}})?$")


def _course_stacks(cfn: Any, names: CourseNames) -> list[dict[str, Any]]:
    prefix = f"{names.course}-"
    return [summary for page in cfn.get_paginator("list_stacks").paginate() for summary in page["StackSummaries"]
            if summary["StackStatus"] != "DELETE_COMPLETE" and summary["StackName"].startswith(prefix)]


def _stack_buckets(cfn: Any, stack: str) -> tuple[str, ...]:
    try:
        pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack)
        return tuple(row["PhysicalResourceId"] for page in pages for row in page["StackResourceSummaries"]
                     if row.get("ResourceType") == "AWS::S3::Bucket" and row.get("PhysicalResourceId")
                     and row.get("ResourceStatus") != "DELETE_COMPLETE")
    except ClientError as exc:
        if "does not exist" in str(exc):
            return ()
        raise


def _tags(s3: Any, bucket: str) -> dict[str, str]:
    try:
        return {tag["Key"]: tag["Value"] for tag in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchTagSet", "NoSuchBucket"):
            return {}
        raise


def _size(s3: Any, bucket: str) -> tuple[int, int]:
    files = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            files, size = files + 1, size + obj.get("Size", 0)
    return files, size


def find_left_behind(cfn: Any, s3: Any, names: CourseNames) -> LeftBehind:
    """The course's buckets that no live stack holds (only those tagged with the course: a bucket that merely
    matches the name pattern is not ours to delete), and its stacks in a state no deploy can go on from."""
    stacks = _course_stacks(cfn, names)
    held: set[str] = set()
    stuck: list[StuckStack] = []
    for summary in stacks:
        buckets = _stack_buckets(cfn, summary["StackName"])
        held.update(buckets)
        status = summary["StackStatus"]
        if status in STUCK:
            stuck.append(StuckStack(summary["StackName"], status, STUCK[status],
                                    buckets if status == "DELETE_FAILED" else ()))
    pattern = _bucket_pattern(names)
    kept: list[KeptBucket] = []
    for bucket in sorted(b["Name"] for b in s3.list_buckets().get("Buckets", [])):
        match = pattern.match(bucket)
        if not match or bucket in held:
            continue
        tags = _tags(s3, bucket)
        if tags.get(TAG_COURSE) != names.course:
            continue
        files, size = _size(s3, bucket)
        kept.append(KeptBucket(bucket, tags.get(TAG_STUDENT), files, size))
    return LeftBehind(tuple(kept), tuple(stuck))


def remove_left_behind(cfn: Any, s3: Any, found: LeftBehind, archive: Path | None) -> list[ArchiveResult]:
    """Archive (into `archive`, verified; None skips it) and delete every kept bucket, then delete the stuck
    stacks, archiving and emptying first what a DELETE_FAILED stack still holds. Returns the archives, for the
    caller to check against what it expects (count and checksums). Waits for each stack to be gone."""
    results: list[ArchiveResult] = []
    for bucket in found.buckets:
        results.append(archive_and_empty(s3, bucket.name, archive))
        s3.delete_bucket(Bucket=bucket.name)
    for stack in found.stacks:
        for bucket in stack.buckets:
            try:
                results.append(archive_and_empty(s3, bucket, archive))
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "NoSuchBucket":
                    raise
        cfn.delete_stack(StackName=stack.name)
        cfn.get_waiter("stack_delete_complete").wait(StackName=stack.name,
                                                     WaiterConfig={"Delay": 2, "MaxAttempts": 300})
    return results
