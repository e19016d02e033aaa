"""Destroy's pre-delete steps for the LabContainers types, under moto."""

from __future__ import annotations

from typing import Any

from lab_scripts.class_repository import layerless_manifest
from labkit.events import describe
from labkit.ops.teardown import AFTER_ARCHIVE, DRAIN, DestroyResult, Drain
from labkit.target import Target


def drain_context(aws: Any, lines: list[str]) -> Drain:
    return Drain(Target("moto", aws, {}, True, wait_delay=0), None, lambda event: lines.append(describe(event)), DestroyResult())


def test_user_drain_deletes_keys_created_outside_cloudformation(aws: Any) -> None:
    iam = aws("iam")
    iam.create_user(UserName="ml101-alice-dlc")
    for _ in range(2):
        iam.create_access_key(UserName="ml101-alice-dlc")
    lines: list[str] = []
    DRAIN["AWS::IAM::User"](drain_context(aws, lines), "ml101-alice-dlc")
    # First frozen (before any bucket is archived), then deleted once every bucket is.
    assert {key["Status"] for key in iam.list_access_keys(UserName="ml101-alice-dlc")["AccessKeyMetadata"]} == {
        "Inactive"}
    AFTER_ARCHIVE["AWS::IAM::User"](drain_context(aws, lines), "ml101-alice-dlc")
    assert iam.list_access_keys(UserName="ml101-alice-dlc")["AccessKeyMetadata"] == []
    assert lines == ["ml101-alice-dlc: deactivated 2 access key(s)", "ml101-alice-dlc: deleted 2 access key(s)"]


def test_user_drain_of_a_user_already_gone_is_quiet(aws: Any) -> None:
    lines: list[str] = []
    DRAIN["AWS::IAM::User"](drain_context(aws, lines), "ml101-gone-dlc")
    assert lines == []


def test_repository_drain_removes_images(aws: Any) -> None:
    ecr = aws("ecr")
    ecr.create_repository(repositoryName="ml101-class")
    ecr.put_image(repositoryName="ml101-class", imageTag="v1", imageManifest=layerless_manifest("v1"))
    lines: list[str] = []
    DRAIN["AWS::ECR::Repository"](drain_context(aws, lines), "ml101-class")
    assert lines == ["ECR ml101-class: deleted 1 image(s)"]
    ecr.delete_repository(repositoryName="ml101-class")
