"""The class ECR repositories: where images are pushed, and emptying them before their stack is deleted.

Each student pushes to their own repository `<course>-class/<student>` (only they may push, pull or list it); the
instructor pushes base images to the course's `<course>-class`, which students may only pull.
CloudFormation's EmptyOnDelete empties them in AWS; doing it first as well makes destroy independent of it
(the emulator ignores EmptyOnDelete and refuses to delete a repository that holds images).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from course.naming import CourseNames

# BatchDeleteImage takes at most 100 image ids per call.
BATCH = 100


def repository_name(names: CourseNames, student: str | None = None) -> str:
    """The student's own repository, or with no student the course's shared one."""
    return names.class_repository if student is None else names.student(student).class_repository


def repository_uri(names: CourseNames, student: str | None = None) -> str:
    """What `docker tag` / `docker push` take: `<account>.dkr.ecr.<region>.amazonaws.com/<repository>`."""
    return f"{registry_host(names)}/{repository_name(names, student)}"


def registry_host(names: CourseNames) -> str:
    """The course account's own registry (not the Deep Learning Containers registry of lab_scripts.dlc)."""
    suffix = "amazonaws.com.cn" if names.region.startswith("cn-") else "amazonaws.com"
    return f"{names.account}.dkr.ecr.{names.region}.{suffix}"


def login_command(names: CourseNames) -> str:
    """The `docker login` command for the course registry; the password goes from the AWS CLI to docker on stdin."""
    return (f"aws ecr get-login-password --region {names.region} | "
            f"docker login --username AWS --password-stdin {registry_host(names)}")


def layerless_manifest(label: str) -> str:
    """A valid image manifest without layers: what the demo and tests push where there is no docker."""
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "layers": [], "annotations": {"labkit": label}})


def empty_repository(ecr: Any, name: str) -> int:
    """Delete every image of repository `name`; returns how many. A missing repository has none."""
    try:
        pages = ecr.get_paginator("list_images").paginate(repositoryName=name)
        image_ids = [image for page in pages for image in page["imageIds"]]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "RepositoryNotFoundException":
            return 0
        raise
    for start in range(0, len(image_ids), BATCH):
        response = ecr.batch_delete_image(repositoryName=name, imageIds=image_ids[start:start + BATCH])
        if response.get("failures"):
            first = response["failures"][0]
            raise RuntimeError(f"could not delete an image of ECR repository {name}: {first.get('failureReason')}")
    return len(image_ids)
