"""Snapshot of every synthesized template: reviewers see template changes as readable JSON diffs.

Asset hashes and the CDK version change without any change to the lab, so they are masked.
Update on purpose with `pytest --snapshot-update`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Template
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

# One of each kind of stack: every class stack and the first student's stacks (the others differ only in names).
STACKS = ["LabSageMaker-alice", "LabDLAMI", "LabDLAMI-alice", "LabContainers", "LabRekognition", "LabGuard"]

_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def masked(template: dict[str, Any]) -> Any:
    return json.loads(_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True)))


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.with_defaults(extension_class=JSONSnapshotExtension)


@pytest.mark.parametrize("construct_id", STACKS)
def test_template_snapshot(construct_id: str, templates: dict[str, Template],
                           snapshot_json: SnapshotAssertion) -> None:
    assert masked(templates[construct_id].to_json()) == snapshot_json


@pytest.mark.parametrize("construct_id", ["LabClassroom", "LabStudent"])
def test_account_per_student_snapshot(construct_id: str, per_account_app: Any,
                                      snapshot_json: SnapshotAssertion) -> None:
    """Account-per-student mode's class stack, and the template its stack set deploys to each student's account."""
    classroom = per_account_app.node.find_child("LabClassroom")
    template = (Template.from_stack(classroom).to_json() if construct_id == "LabClassroom"
                else json.loads(classroom.student_template.read_text()))
    assert masked(template) == snapshot_json


def test_masking_hides_asset_hashes_only() -> None:
    digest = "a" * 64
    assert masked({"S3Key": f"{digest}.zip", "Name": "ml101"}) == {"S3Key": "<asset-hash>.zip", "Name": "ml101"}
