"""A student leaves the class: their stacks are found although the app no longer builds them, their work is
archived, their stacks deleted, and the rest of the class stays (and is not reported as left over)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template

from lab_scripts import buckets
from labkit.events import describe
from labkit import cli
from course.config import LabConfig
from labkit.deployed import dropped_out_stacks
from labkit.ops.teardown import destroy
from labkit.target import Target
from tests.conftest import make_config, new_app
from tests.lab_scripts.conftest import create_lab_stack

COURSE_TAG = [{"Key": "labkit:course", "Value": "ml101"}]


@pytest.fixture(scope="module")
def with_dave() -> dict[str, Any]:
    """The class's templates from when dave was still on the roster."""
    app = new_app(make_config(students=["alice", "bob", "dave"]))
    return {c.node.id: Template.from_stack(c).to_json() for c in app.node.children
            if isinstance(c, Stack) and c.node.id.startswith("LabSageMaker-")}


@pytest.fixture
def class_with_a_leaver(target: Target, with_dave: dict[str, Any], emulator_tags: None) -> Target:
    for student in ("alice", "bob", "dave"):
        create_lab_stack(target.clients, f"ml101-LabSageMaker-{student}", with_dave[f"LabSageMaker-{student}"],
                         tags=COURSE_TAG)
    # Someone else's stack with a similar name and no course tag is never touched.
    create_lab_stack(target.clients, "ml101-LabSageMaker-visitor", {"Resources": {"Q": {
        "Type": "AWS::SQS::Queue", "Properties": {"QueueName": "visitor"}}}})
    target.clients("s3").put_object(Bucket="ml101-dave-123456789012-us-east-1", Key="thesis.ipynb", Body=b"{}")
    return target


def test_stacks_of_a_student_who_left_are_found(class_with_a_leaver: Target, config: LabConfig) -> None:
    dropped = dropped_out_stacks(class_with_a_leaver, config)
    assert [(unit.student, unit.stack_name) for unit in dropped] == [("dave", "ml101-LabSageMaker-dave")]


def test_destroying_one_student_archives_them_and_leaves_the_class(
    class_with_a_leaver: Target, course: tuple[LabConfig, Path], tmp_path: Path
) -> None:
    config, path = course
    lines: list[str] = []
    result = destroy(config, path, class_with_a_leaver, ["LabSageMaker"], archive_dir=tmp_path, emit=lambda event: lines.append(describe(event)),
                     students=["dave"])
    manifest = tmp_path / "ml101-dave-123456789012-us-east-1" / "manifest.json"
    assert buckets.read_archived(manifest, "thesis.ipynb") == b"{}"
    assert "ml101-LabSageMaker-dave: dave is no longer in the course file" in lines
    # alice's and bob's stacks are meant to stay, and the untagged look-alike is not dave's: nothing of dave is left.
    assert result.audit.leftovers == []
    cfn = class_with_a_leaver.clients("cloudformation")
    live = {s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"}
    assert live == {"ml101-LabSageMaker-alice", "ml101-LabSageMaker-bob", "ml101-LabSageMaker-visitor"}
    notebooks = class_with_a_leaver.clients("sagemaker").list_notebook_instances()["NotebookInstances"]
    assert {nb["NotebookInstanceStatus"] for nb in notebooks} == {"InService"}  # the others keep working


def test_destroy_of_an_unknown_student_is_refused(class_with_a_leaver: Target, course: tuple[LabConfig, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(course[1]), "destroy", "--student", "mallory", "--yes"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no stack of mallory" in err
    assert len(class_with_a_leaver.clients("sagemaker").list_notebook_instances()["NotebookInstances"]) == 3


def test_destroy_plan_lists_only_the_students_stacks(class_with_a_leaver: Target, course: tuple[LabConfig, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(course[1]), "destroy", "--student", "dave"]) == 0
    out = capsys.readouterr().out
    assert "ml101-LabSageMaker-dave: delete" in out and "ml101-LabSageMaker-alice" not in out and "dry run: nothing changed" in out
