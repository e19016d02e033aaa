"""The emulator's AWS timing model (labkit.emulator_timing): stacks and notebooks take their modelled time, scaled,
in dependency order; CloudFormation's API can be rate limited. In-process moto with a clock the test moves."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from labkit.emulator_cfn import patch_cloudformation
from labkit.emulator_timing import TIMES, Timing, TokenBucket, patch_timing, schedule, stack_seconds
from tests.lab_scripts.conftest import assigner

SCALE = 0.01
ROLE, NOTEBOOK = TIMES["AWS::IAM::Role"], TIMES["AWS::SageMaker::NotebookInstance"]
BUCKET = TIMES["AWS::S3::Bucket"]


def notebook_template() -> dict[str, Any]:
    """A student's notebook environment: the notebook needs its role (GetAtt); the bucket depends on nothing."""
    return {"Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "Notebook": {"Type": "AWS::SageMaker::NotebookInstance", "Properties": {
            "InstanceType": "ml.t3.medium", "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]}}},
    }}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    patch_cloudformation(monkeypatch.setattr)
    patch_timing(Timing(time_scale=SCALE), assigner(monkeypatch), clock=clock)
    return clock


def test_every_type_in_the_table_names_its_source() -> None:
    assert all(times.source for times in TIMES.values())
    for kind in ("AWS::SageMaker::NotebookInstance", "AWS::EC2::Instance"):
        assert TIMES[kind].stop is not None


def test_a_resource_starts_when_what_it_refers_to_is_done_and_deletes_in_reverse() -> None:
    created = schedule(notebook_template()["Resources"], "create")
    assert created["Notebook"] == (ROLE.create, ROLE.create + NOTEBOOK.create)
    assert created["Bucket"] == (0.0, BUCKET.create)  # in parallel with the rest
    deleted = schedule(notebook_template()["Resources"], "delete")
    assert deleted["Role"][0] == NOTEBOOK.delete  # the role goes after the notebook that uses it
    assert stack_seconds(notebook_template(), "create") == ROLE.create + NOTEBOOK.create


def test_depends_on_sub_and_retained_resources() -> None:
    resources = {"A": {"Type": "AWS::SNS::Topic"},
                 "B": {"Type": "AWS::SQS::Queue", "DependsOn": "A"},
                 "C": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain",
                       "Properties": {"LogGroupName": {"Fn::Sub": "/x/${B.Arn}"}}}}
    created = schedule(resources, "create")
    assert created["B"][0] == created["A"][1] and created["C"][0] == created["B"][1]
    assert schedule(resources, "delete")["C"] == (0.0, 0.0)  # kept: nothing to wait for


def test_a_stack_with_a_notebook_stays_in_progress_for_its_modelled_time(aws: Any, clock: Clock) -> None:
    cfn, sm = aws("cloudformation"), aws("sagemaker")
    cfn.create_stack(StackName="ml101-LabSageMaker-alice", TemplateBody=json.dumps(notebook_template()))
    modelled = (ROLE.create + NOTEBOOK.create) * SCALE

    def status() -> str:
        return str(cfn.describe_stacks(StackName="ml101-LabSageMaker-alice")["Stacks"][0]["StackStatus"])

    assert status() == "CREATE_IN_PROGRESS"
    name = sm.list_notebook_instances()["NotebookInstances"][0]["NotebookInstanceName"]
    assert sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"] == "Pending"
    clock.now += modelled - 0.01
    assert status() == "CREATE_IN_PROGRESS"
    clock.now += 0.02
    assert status() == "CREATE_COMPLETE"
    assert sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"] == "InService"

    # Stop follows the same clock, and a stopping notebook cannot be deleted (as in AWS).
    sm.stop_notebook_instance(NotebookInstanceName=name)
    assert sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"] == "Stopping"
    with pytest.raises(ClientError, match="Stopping"):
        sm.delete_notebook_instance(NotebookInstanceName=name)
    clock.now += (NOTEBOOK.stop or 0) * SCALE + 0.001
    assert sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"] == "Stopped"

    cfn.delete_stack(StackName="ml101-LabSageMaker-alice")
    assert status() == "DELETE_IN_PROGRESS"
    assert sm.list_notebook_instances()["NotebookInstances"]  # not gone before its time
    clock.now += (NOTEBOOK.delete + ROLE.delete) * SCALE - 0.01
    assert status() == "DELETE_IN_PROGRESS"
    clock.now += 0.02
    with pytest.raises(ClientError, match="does not exist"):
        status()
    assert sm.list_notebook_instances()["NotebookInstances"] == []


def test_an_update_takes_the_time_of_what_it_adds(aws: Any, clock: Clock) -> None:
    cfn = aws("cloudformation")
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    cfn.create_stack(StackName="ml101-Lab", TemplateBody=json.dumps(template))
    clock.now += 1
    template["Resources"]["Queue"] = {"Type": "AWS::SQS::Queue"}
    cfn.update_stack(StackName="ml101-Lab", TemplateBody=json.dumps(template))
    assert cfn.describe_stacks(StackName="ml101-Lab")["Stacks"][0]["StackStatus"] == "UPDATE_IN_PROGRESS"
    clock.now += TIMES["AWS::SQS::Queue"].create * SCALE
    assert cfn.describe_stacks(StackName="ml101-Lab")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"


def test_a_token_bucket_throttles_cloudformation_beyond_its_rate(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    patch_timing(Timing(time_scale=SCALE, cfn_rate=2, cfn_burst=3), assigner(monkeypatch), clock=clock)
    cfn = aws("cloudformation")
    cfn.meta.events.register("needs-retry.*", lambda **kwargs: None)  # see each refusal, no SDK retries
    for _ in range(3):
        cfn.list_stacks()
    with pytest.raises(ClientError, match="Throttling"):
        cfn.list_stacks()
    clock.now += 0.5  # one token back at 2 a second
    cfn.list_stacks()


def test_the_bucket_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=1, clock=clock)
    assert bucket.take() and not bucket.take()
    clock.now += 0.1
    assert bucket.take()


def test_timing_is_off_unless_asked() -> None:
    from labkit.emulator import Emulator

    assert Emulator("us-east-1").timing is None
    assert Timing(time_scale=0.02, cfn_rate=5).server_args() == [
        "--aws-timing", "--time-scale", "0.02", "--cfn-rate", "5", "--cfn-burst", "20"]
