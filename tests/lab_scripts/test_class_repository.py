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
