"""A learner on their own, with the CDK CLI exactly as they type it: `cdk deploy LabSageMaker`, a file in the
bucket, `cdk destroy LabSageMaker --force`, and `cdk deploy LabSageMaker` again; the same with `--all`. The CLI
runs without the venv on PATH, as in a fresh shell: cdk.json's app must find the project's Python itself."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from course.config import LABS, LabConfig, load_config
from course.naming import SOLO_STUDENT
from labkit.emulator import Emulator, Endpoint
from labkit.jobs import Target, emulator_target, ensure_bootstrapped
from lab_scripts.network_cleanup import clean_vpc
from lab_scripts.retained import find_left_behind, remove_left_behind

pytestmark = pytest.mark.emulator
ROOT = Path(__file__).resolve().parents[2]
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
        ensure_bootstrapped(target, config, path, echo=lambda line: None)
        yield endpoint, target, config, path


def cdk(endpoint: Endpoint, path: Path, *words: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`cdk <words>` as typed in a shell where the venv is not active (its bin dir is off PATH)."""
    venv_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "AWS_PROFILE")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update({k: v for k, v in endpoint.env().items() if k != "AWS_PROFILE"})
    env.update({"CDK_VALIDATION": "false", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"})
    # What a script adds to the learner's words: no approval prompt (there is no terminal).
    unattended = ["--require-approval", "never"] if words[0] == "deploy" else []
    done = subprocess.run([str(ROOT / "node_modules" / ".bin" / "cdk"), *words, "-c", f"labkit:config={path}",
                           *unattended, "--no-notices"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert not check or done.returncode == 0, \
        f"cdk {' '.join(words)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def destroy_all(endpoint: Endpoint, target: Target, config: LabConfig, path: Path) -> None:
    """`cdk destroy --all --force`. The emulator's CloudFormation cannot delete the route tables and gateway of
    LabDLAMI's network (README, "The embedded emulator"; AWS's can), so here, as `labctl destroy` does, the VPC is
    cleared directly when that is the one failure, and the learner's command is run again."""
    first = cdk(endpoint, path, "destroy", "--all", "--force", check=False)
    if first.returncode != 0:
        assert "has dependencies and cannot be deleted" in first.stdout + first.stderr, first.stderr[-3000:]
        ec2 = target.clients("ec2")
        for vpc in ec2.describe_vpcs(Filters=[{"Name": "tag:labkit:course", "Values": [config.course_id]}])["Vpcs"]:
            clean_vpc(ec2, vpc["VpcId"], echo=lambda line: None, wait_delay=1)
        cdk(endpoint, path, "destroy", "--all", "--force")


def live_stacks(target: Target) -> dict[str, str]:
    cfn = target.clients("cloudformation")
    return {s["StackName"]: s["StackStatus"] for page in cfn.get_paginator("list_stacks").paginate()
            for s in page["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE" and s["StackName"] != "CDKToolkit"}


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
        solo: tuple[Endpoint, Target, LabConfig, Path], tmp_path: Path) -> None:
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
    archived = remove_left_behind(target.clients("cloudformation"), s3, left, tmp_path)
    assert [(r.bucket, r.files) for r in archived] == [(first, 1)]
    assert (tmp_path / first / "work" / "notes.md").read_bytes() == b"# lab 1\n"
    assert find_left_behind(target.clients("cloudformation"), s3, config.names).empty
    cdk(endpoint, path, "destroy", "LabSageMaker", "--force")


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
    assert (tmp_path / first / "work" / "model.py").read_bytes() == b"import torch\n"
    assert find_left_behind(target.clients("cloudformation"), s3, config.names).empty
