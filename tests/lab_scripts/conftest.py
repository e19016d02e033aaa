"""moto in-process fixtures for the lab scripts: each test gets a fresh fake account."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws


@functools.cache
def _session() -> boto3.Session:
    """One boto3 session for the whole run. moto gives each test a fresh default session, which parses every
    service model again (tens of milliseconds per client); the mock itself does not depend on the session."""
    return boto3.Session(region_name="us-east-1")


@pytest.fixture
def aws() -> Iterator[Any]:
    """A client factory on a fresh moto account, shaped like the one labkit passes to lab scripts."""
    with mock_aws():
        # One client per service and test: code under test asks its factory for clients freely.
        yield functools.cache(_session().client)


@pytest.fixture
def sagemaker(aws: Any) -> Any:
    return aws("sagemaker")


def create_notebook(aws: Any, name: str = "ml101-alice") -> str:
    role = aws("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws("sagemaker").create_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=role)
    return name


def launchable_image(ec2: Any) -> str:
    """An AMI to launch test instances from. Registering one takes milliseconds; listing moto's Amazon images
    returns 1,300 of them and took 0.5-2 s per test (README, "Performance")."""
    return str(ec2.register_image(Name="labkit test image")["ImageId"])


def versioned_bucket(aws: Any, name: str) -> Any:
    """An S3 client with `name` created and versioned, as LabBucket deploys every lab bucket."""
    client = aws("s3")
    client.create_bucket(Bucket=name)
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return client
def create_lab_stack(aws: Any, stack_name: str, template: dict[str, Any],
                     tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Deploy a synthesized lab template into moto's CloudFormation (it needs the CDK bootstrap version).

    `tags` are stack tags, as the CDK CLI passes them (the guard deletes only course-tagged stacks).
    """
    aws("ssm").put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String", Overwrite=True)
    aws("cloudformation").create_stack(StackName=stack_name, TemplateBody=json.dumps(template),
                                       **({"Tags": tags} if tags else {}))
    return template


def assigner(monkeypatch: pytest.MonkeyPatch) -> Any:
    """monkeypatch.setattr that may add attributes, for the emulator's patches of moto: some add what moto lacks
    (an action, a property), and they end with the test."""
    return lambda target, name, value: monkeypatch.setattr(target, name, value, raising=False)


@pytest.fixture
def emulator_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto in-process with the embedded emulator's tag fixes (CloudFormation notebooks and KMS keys get tags)."""
    from labkit.emulator_server import patch_moto

    patch_moto(assigner(monkeypatch))
