"""The class ECR repository: emptied before its stack is deleted.

CloudFormation's EmptyOnDelete does this in AWS; doing it first as well makes destroy independent of it
(the emulator ignores EmptyOnDelete and refuses to delete a repository that holds images).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

# BatchDeleteImage takes at most 100 image ids per call.
BATCH = 100


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
