"""Emptying the class repository under moto: every image goes, in batches, and a missing repository is fine."""

from __future__ import annotations

from typing import Any

from lab_scripts.class_repository import BATCH, empty_repository, layerless_manifest



def push(ecr: Any, repository: str, tag: str) -> None:
    ecr.put_image(repositoryName=repository, imageTag=tag, imageManifest=layerless_manifest(tag))


def test_every_image_is_deleted_across_batches(aws: Any) -> None:
    ecr = aws("ecr")
    ecr.create_repository(repositoryName="ml101-class")
    for index in range(BATCH + 3):
        push(ecr, "ml101-class", f"v{index}")
    assert empty_repository(ecr, "ml101-class") == BATCH + 3
    assert ecr.list_images(repositoryName="ml101-class")["imageIds"] == []
    ecr.delete_repository(repositoryName="ml101-class")  # refused while images remain


def test_missing_repository_has_nothing_to_empty(aws: Any) -> None:
    assert empty_repository(aws("ecr"), "ml101-gone") == 0


def test_students_push_to_their_own_repository_below_the_course_one() -> None:
    from course.naming import CourseNames
    from lab_scripts.class_repository import login_command, repository_name, repository_uri

    names = CourseNames("ml101", "123456789012", "us-east-1")
    assert repository_name(names) == "ml101-class"
    assert repository_uri(names, "alice") == "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml101-class/alice"
    assert login_command(names).endswith("--password-stdin 123456789012.dkr.ecr.us-east-1.amazonaws.com")
    assert repository_uri(CourseNames("ml101", "123456789012", "cn-north-1")).startswith(
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/")


def test_an_own_repository_with_immutable_tags_refuses_a_second_push_of_a_tag(aws: Any) -> None:
    """What IMMUTABLE means for a student: a tag names one image for good (moto enforces it too)."""
    import pytest
    from botocore.exceptions import ClientError

    import hashlib
    import json

    def image(label: str) -> str:  # moto derives the digest from the layers: one layer each, so they differ
        layer = {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1,
                 "digest": "sha256:" + hashlib.sha256(label.encode()).hexdigest()}
        return json.dumps({**json.loads(layerless_manifest(label)), "layers": [layer]})

    ecr = aws("ecr")
    ecr.create_repository(repositoryName="ml101-class/alice", imageTagMutability="IMMUTABLE")
    ecr.put_image(repositoryName="ml101-class/alice", imageTag="lab1", imageManifest=image("alice"))
    # AWS answers ImageTagAlreadyExistsException, moto 5.2.5 ImageAlreadyExistsException.
    with pytest.raises(ClientError, match="Image(Tag)?AlreadyExists"):
        ecr.put_image(repositoryName="ml101-class/alice", imageTag="lab1", imageManifest=image("other"))
    assert empty_repository(ecr, "ml101-class/alice") == 1
