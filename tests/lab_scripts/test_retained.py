"""What a plain destroy left behind, under moto: kept course buckets (by name pattern and course tag, never a
bucket a live stack holds or another course's), stacks no deploy can go on from; removed with an archive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from course.naming import CourseNames
from lab_scripts import buckets
from lab_scripts.retained import STUCK, find_left_behind, remove_left_behind

NAMES = CourseNames("mylab", "123456789012", "us-east-1")
KEPT = "mylab-me-123456789012-us-east-1-0a1b2c3d"
TEMPLATE = json.dumps({"Resources": {"Live": {"Type": "AWS::S3::Bucket", "Properties": {
    "BucketName": "mylab-me-123456789012-us-east-1-ffff0000",
    "Tags": [{"Key": "labkit:course", "Value": "mylab"}]}}}})


def bucket(s3: Any, name: str, course: str | None, student: str = "me") -> None:
    s3.create_bucket(Bucket=name)
    if course:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "labkit:course", "Value": course},
                                                               {"Key": "labkit:student", "Value": student}]})


def test_finds_kept_buckets_and_stuck_stacks_and_removes_them_with_an_archive(aws: Any, tmp_path: Path) -> None:
    s3, cfn = aws("s3"), aws("cloudformation")
    bucket(s3, KEPT, "mylab")
    s3.put_object(Bucket=KEPT, Key="work/notes.md", Body=b"# lab 1\n")
    bucket(s3, "mylab-me-123456789012-us-east-1-99999999", None)        # not tagged: not ours to delete
    bucket(s3, "other-me-123456789012-us-east-1-0a1b2c3d", "other")     # another course
    bucket(s3, "mylab-me-123456789012-eu-west-1-0a1b2c3d", "mylab")     # another region's name
    cfn.create_stack(StackName="mylab-LabSageMaker", TemplateBody=TEMPLATE)  # live: its bucket is not left behind
    cfn.create_change_set(StackName="mylab-LabDLAMI", ChangeSetName="cdk-deploy-change-set",
                          ChangeSetType="CREATE", TemplateBody=json.dumps({"Resources": {"Q": {
                              "Type": "AWS::SQS::Queue", "Properties": {}}}}))

    found = find_left_behind(cfn, s3, NAMES)
    assert [(b.name, b.student, b.files, b.bytes) for b in found.buckets] == [(KEPT, "me", 1, 8)]
    assert [(s.name, s.status) for s in found.stacks] == [("mylab-LabDLAMI", "REVIEW_IN_PROGRESS")]
    assert found.lines("labctl teardown") == [
        f"bucket {KEPT}: kept by cdk destroy (1 files, 8 bytes) - labctl teardown archives and deletes it",
        f"stack mylab-LabDLAMI: REVIEW_IN_PROGRESS ({STUCK['REVIEW_IN_PROGRESS']}) - labctl teardown deletes it"]

    archived = remove_left_behind(cfn, s3, found, tmp_path)
    assert [(r.bucket, r.files) for r in archived] == [(KEPT, 1)]
    assert buckets.read_archived(tmp_path / KEPT / "manifest.json", "work/notes.md") == b"# lab 1\n"
    assert find_left_behind(cfn, s3, NAMES).empty
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert KEPT not in names and "mylab-me-123456789012-us-east-1-99999999" in names


def test_nothing_left_behind_is_empty(aws: Any) -> None:
    found = find_left_behind(aws("cloudformation"), aws("s3"), NAMES)
    assert found.empty and found.lines() == []
