"""Solo mode: five stacks named like the labs, the learner's bucket kept by `cdk destroy` under a name the next
deploy does not reuse, and the GPU lab in one stack; synthesized with cdk-nag and CloudFormation validation on."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from course.config import LABS, LabConfig, parse_config
from course.naming import TAG_STUDENT
from stacks import build_app
from tests.conftest import TODAY, cdk_context


@pytest.fixture(scope="module")
def solo() -> LabConfig:
    return parse_config({"course": {"id": "mylab", "account": "123456789012", "region": "us-east-1",
                                    "expires": dt.date(2027, 1, 31)}}, today=TODAY)


@pytest.fixture(scope="module")
def templates(solo: LabConfig) -> dict[str, Template]:
    # nag and validation on: synth raises on any unacknowledged finding, as `cdk deploy` would stop.
    app = build_app(App(context=cdk_context()), solo)
    app.synth()
    return {child.node.id: Template.from_stack(child) for child in app.node.children if isinstance(child, Stack)}


def test_stacks_are_named_like_the_labs(templates: dict[str, Template], solo: LabConfig) -> None:
    assert list(templates) == LABS
    assert [unit.stack_name for unit in solo.stacks()] == [f"mylab-{lab}" for lab in LABS]


def test_learner_bucket_is_kept_and_named_per_stack(templates: dict[str, Template], solo: LabConfig) -> None:
    (bucket,) = templates["LabSageMaker"].find_resources("AWS::S3::Bucket").values()
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    prefix, generation = bucket["Properties"]["BucketName"]["Fn::Join"][1]
    assert f"{prefix}-" == solo.names.student("me").kept_bucket_prefix == "mylab-me-123456789012-us-east-1-"
    assert generation == {"Fn::Select": [0, {"Fn::Split": ["-", {"Fn::Select": [2, {"Fn::Split": [
        "/", {"Ref": "AWS::StackId"}]}]}]}]}
    assert {"Key": TAG_STUDENT, "Value": "me"} in bucket["Properties"]["Tags"]
    # The notebook role reaches this bucket by reference, whatever name CloudFormation gives it.
    policy: Any = next(iter(templates["LabSageMaker"].find_resources("AWS::IAM::Policy").values()))
    own = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Sid"] == "ListOwnBucket"][0]
    assert "Fn::GetAtt" in str(own["Resource"])


def test_upload_bucket_of_the_class_labs_is_still_deleted_with_its_stack(templates: dict[str, Template]) -> None:
    (bucket,) = templates["LabRekognition"].find_resources("AWS::S3::Bucket").values()
    assert bucket["DeletionPolicy"] == "Delete"


def test_gpu_lab_is_one_stack_network_and_instance(templates: dict[str, Template]) -> None:
    dlami = templates["LabDLAMI"]
    dlami.resource_count_is("AWS::EC2::VPC", 1)
    dlami.resource_count_is("AWS::EC2::Instance", 1)
    assert "InstanceId" in dlami.find_outputs("*")
    # Nothing exported: `cdk destroy LabDLAMI` is never blocked by an importing stack.
    assert not any("Export" in output for output in dlami.find_outputs("*").values())
