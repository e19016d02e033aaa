"""A learner on their own, with the CDK CLI exactly as they type it: `cdk deploy LabSageMaker`, a file in the
bucket, `cdk destroy LabSageMaker --force`, and `cdk deploy LabSageMaker` again; the same with `--all`. The CLI
runs without the venv on PATH, as in a fresh shell: cdk.json's app must find the project's Python itself."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from course.config import LABS, LabConfig, load_config
from course.naming import SOLO_STUDENT
from labkit.emulator import Emulator, Endpoint
from labkit.ops.stacks import ensure_bootstrapped
from labkit.target import Target, emulator_target
from lab_scripts import buckets
from lab_scripts.retained import find_left_behind, remove_left_behind
from labkit import cli
from tests.emulator.typed import ROOT, cdk, destroy_all, live_stacks

pytestmark = pytest.mark.emulator
BUCKET = "AWS::S3::Bucket"


@pytest.fixture(scope="module")
def solo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Endpoint, Target, LabConfig, Path]]:
    # Its own emulator: these stacks are named like the labs, and the class round trip counts every stack.
    with Emulator("us-east-1") as endpoint:
        text = (ROOT / "examples" / "solo.toml").read_text()
        expires = (dt.date.today() + dt.timedelta(days=30)).isoformat()
        path = tmp_path_factory.mktemp("solo") / "solo.toml"
        path.write_text("\n".join(f"expires = {expires}" if line.startswith("expires") else line
                                  for line in text.splitlines()))
        config = load_config(path)
        target = emulator_target(endpoint)
        ensure_bootstrapped(target, config, path)
        yield endpoint, target, config, path


def learner_bucket(target: Target, config: LabConfig) -> str:
    cfn = target.clients("cloudformation")
    rows = cfn.list_stack_resources(StackName=config.names.stack("LabSageMaker"))["StackResourceSummaries"]
    (bucket,) = [row["PhysicalResourceId"] for row in rows if row.get("ResourceType") == BUCKET]
    return str(bucket)


def test_solo_course_file_is_one_learner_with_stacks_named_like_the_labs(
        solo: tuple[Endpoint, Target, LabConfig, Path]) -> None:
    _, _, config, _ = solo
    assert config.classroom.solo and config.students == (SOLO_STUDENT,)
    assert [unit.construct_id for unit in config.stacks()] == LABS


def test_deploy_destroy_deploy_labsagemaker_keeps_the_learners_file(
        solo: tuple[Endpoint, Target, LabConfig, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint, target, config, path = solo
    s3 = target.clients("s3")
    cdk(endpoint, path, "deploy", "LabSageMaker")
    assert live_stacks(target) == {config.names.stack("LabSageMaker"): "CREATE_COMPLETE"}
    first = learner_bucket(target, config)
    assert first.startswith(config.names.student(SOLO_STUDENT).kept_bucket_prefix)
    s3.put_object(Bucket=first, Key="work/notes.md", Body=b"# lab 1\n")

    cdk(endpoint, path, "destroy", "LabSageMaker", "--force")
    assert live_stacks(target) == {}
    left = find_left_behind(target.clients("cloudformation"), s3, config.names)
    assert [(b.name, b.student, b.files) for b in left.buckets] == [(first, SOLO_STUDENT, 1)] and not left.stacks
    assert s3.get_object(Bucket=first, Key="work/notes.md")["Body"].read() == b"# lab 1\n"

    cdk(endpoint, path, "deploy", "LabSageMaker")  # a new stack, a new bucket: nothing collides with the kept one
    second = learner_bucket(target, config)
    assert second != first and live_stacks(target) == {config.names.stack("LabSageMaker"): "CREATE_COMPLETE"}
    # The live bucket is not left behind; the kept one still is, until it is archived and removed.
    left = find_left_behind(target.clients("cloudformation"), s3, config.names)
    assert [b.name for b in left.buckets] == [first]
    # labctl sees what the plain destroy kept, and its teardown archives it (checksum equal): nothing left.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli.emulator, "read_state", lambda: endpoint)
        assert cli.main(["--config", str(path), "audit"]) == 1  # the kept bucket bills for storage
        assert first in capsys.readouterr().out
        assert cli.main(["--config", str(path), "teardown", "--yes", "--confirm", config.course_id,
                         "--archive", str(tmp_path)]) == 0, capsys.readouterr().out[-3000:]
    out = capsys.readouterr().out
    assert "0 resources left" in out
    assert buckets.read_archived(tmp_path / first / "manifest.json", "work/notes.md") == b"# lab 1\n"
    assert find_left_behind(target.clients("cloudformation"), s3, config.names).empty
    assert live_stacks(target) == {}


def test_deploy_all_destroy_all_deploy_all(solo: tuple[Endpoint, Target, LabConfig, Path], tmp_path: Path) -> None:
    endpoint, target, config, path = solo
    s3 = target.clients("s3")
    cdk(endpoint, path, "deploy", "--all")
    assert live_stacks(target) == {config.names.stack(lab): "CREATE_COMPLETE" for lab in LABS}
    first = learner_bucket(target, config)
    s3.put_object(Bucket=first, Key="work/model.py", Body=b"import torch\n")

    destroy_all(endpoint, target, config, path)
    assert live_stacks(target) == {}
    left = find_left_behind(target.clients("cloudformation"), s3, config.names)
    assert [(b.name, b.files) for b in left.buckets if b.student == SOLO_STUDENT] == [(first, 1)]

    cdk(endpoint, path, "deploy", "--all")
    assert live_stacks(target) == {config.names.stack(lab): "CREATE_COMPLETE" for lab in LABS}
    assert learner_bucket(target, config) != first
    destroy_all(endpoint, target, config, path)
    remove_left_behind(target.clients("cloudformation"), s3,
                       find_left_behind(target.clients("cloudformation"), s3, config.names), tmp_path)
    assert buckets.read_archived(tmp_path / first / "manifest.json", "work/model.py") == b"import torch\n"
    assert find_left_behind(target.clients("cloudformation"), s3, config.names).empty
