"""`labctl local up` leaves a CDK-bootstrapped emulator, and after `eval "$(labctl local env)"` the CDK CLI, the aws
CLI and boto3 all reach it, even from a shell that had a profile set."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit import emulator
from labkit.cdk import cdk_executable
from labkit.emulator import BOOTSTRAP_PARAMETER, Endpoint

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def detached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Endpoint, Path]]:
    state = tmp_path_factory.mktemp("local") / "emulator.json"
    endpoint = emulator.start_detached("us-east-1", state_file=state, bootstrap_cdk=True)
    try:
        yield endpoint, state
    finally:
        emulator.stop_detached(state)


def test_local_up_leaves_the_emulator_cdk_bootstrapped(detached: tuple[Endpoint, Path]) -> None:
    endpoint, state = detached
    assert emulator.read_state(state) == endpoint
    session = endpoint.session()
    assert session.client("ssm").get_parameter(Name=BOOTSTRAP_PARAMETER)["Parameter"]["Value"]
    toolkit = session.client("cloudformation").describe_stacks(StackName="CDKToolkit")["Stacks"][0]
    assert toolkit["StackStatus"] == "CREATE_COMPLETE"
    assert any(b["Name"].startswith("cdk-hnb659fds-assets-") for b in session.client("s3").list_buckets()["Buckets"])
    assert emulator.bootstrap(endpoint) is False  # once is enough


def test_the_emulator_has_the_dlami_stand_ins_and_none_of_motos_public_images(
        detached: tuple[Endpoint, Path]) -> None:
    endpoint, _ = detached
    ec2 = endpoint.session().client("ec2")
    mine = ec2.describe_images(Owners=["self"])["Images"]
    assert mine and all(image["Name"].startswith("labkit emulator stand-in for DLAMI") for image in mine)
    assert ec2.describe_images(Owners=["amazon"])["Images"] == []
    assert len(ec2.describe_snapshots()["Snapshots"]) == len(mine)  # the stand-ins' own; moto made one per public image


def test_after_eval_of_local_env_cdk_aws_cli_and_boto3_work(detached: tuple[Endpoint, Path]) -> None:
    endpoint, _ = detached
    checks = [f"{sys.executable} -c 'import boto3; print(boto3.client(\"sts\").get_caller_identity()[\"Account\"])'",
              # A CLI call that needs credentials, the endpoint and the bootstrap: a no-op bootstrap.
              f"{cdk_executable()} bootstrap aws://123456789012/us-east-1 --app '' --no-notices >/dev/null"]
    if shutil.which("aws"):
        checks.append("aws sts get-caller-identity --query Account --output text")
    script = "\n".join(["set -e", "export AWS_PROFILE=a-profile-that-does-not-exist",
                        *endpoint.shell_lines(), *checks])
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin:" + str(Path(shutil.which("aws") or "/bin").parent),
                               "HOME": str(Path.home()), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split().count("123456789012") == (2 if shutil.which("aws") else 1)
