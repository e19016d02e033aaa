"""`AWS::CloudFormation::StackSet` in the emulator (labkit.emulator_stackset), each against the moto 5.2.5 behaviour
it covers; `test_moto_*` tests show unpatched moto, so a moto upgrade that fixes one shows which patch can go."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from labkit import emulator_stackset
from labkit.emulator_stackset import MANAGED, patch_stack_sets
from lab_scripts.organization import account_clients, ensure_ou, ensure_student_accounts, stack_instance_states
from tests.lab_scripts.conftest import assigner

MEMBER_TEMPLATE = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "lab-topic"}}}}
FAILING_TEMPLATE = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {
    "Fn::GetAtt": ["Missing", "Arn"]}}}}}


def class_template(ou: str, member: dict[str, Any] = MEMBER_TEMPLATE, **preferences: int) -> str:
    """A LabClassroom-shaped class template: one service-managed, auto-deploying stack set aimed at `ou`."""
    return json.dumps({"Resources": {"Students": {"Type": "AWS::CloudFormation::StackSet", "Properties": {
        "StackSetName": "ml101-LabStudent", "PermissionModel": "SERVICE_MANAGED",
        "AutoDeployment": {"Enabled": True, "RetainStacksOnAccountRemoval": False},
        "Capabilities": ["CAPABILITY_NAMED_IAM"], "TemplateBody": json.dumps(member),
        "OperationPreferences": {"MaxConcurrentPercentage": 100, "FailureTolerancePercentage": 0, **preferences},
        "StackInstancesGroup": [{"DeploymentTargets": {"OrganizationalUnitIds": [ou]}, "Regions": ["us-east-1"]}],
    }}}})


@pytest.fixture
def org(aws: Any) -> tuple[Any, str, dict[str, str]]:
    """An organization with the class OU and three students' accounts in it."""
    client = aws("organizations")
    client.create_organization(FeatureSet="ALL")
    ou = ensure_ou(client, "ml101-students")
    accounts = ensure_student_accounts(client, ou, "ml101", [(s, f"{s}@example.edu", None) for s in ("a", "b", "c")],
                                       echo=lambda _: None)
    return client, ou, accounts


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    seeded: list[tuple[str, str]] = []
    patch_stack_sets(monkeypatch.setattr, lambda region, account: seeded.append((region, account)))
    return seeded


def member_stacks(aws: Any, account: str) -> list[str]:
    clients: Callable[[str], Any] = account_clients(aws("sts"), account, region="us-east-1")
    return [s["StackName"] for s in clients("cloudformation").describe_stacks()["Stacks"]]


def test_moto_skips_the_stack_set_type_and_hides_service_managed_stacks(aws: Any, org: Any) -> None:
    _, ou, accounts = org
    cfn = aws("cloudformation")
    cfn.create_stack(StackName="LabClassroom", TemplateBody=class_template(ou))
    assert cfn.describe_stacks(StackName="LabClassroom")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    assert cfn.list_stack_sets()["Summaries"] == []  # point 1: "created", with nothing behind it
    cfn.create_stack_set(StackSetName="direct", TemplateBody=json.dumps(MEMBER_TEMPLATE),
                         PermissionModel="SERVICE_MANAGED")
    cfn.create_stack_instances(StackSetName="direct", Regions=["us-east-1"],
                               DeploymentTargets={"OrganizationalUnitIds": [ou]})
    account = next(iter(accounts.values()))
    assert member_stacks(aws, account) == []  # point 2: the member's stack is not in its account


def test_the_class_stack_deploys_a_stack_in_every_account_of_the_ou(aws: Any, org: Any, patched: Any) -> None:
    _, ou, accounts = org
    cfn = aws("cloudformation")
    cfn.create_stack(StackName="LabClassroom", TemplateBody=class_template(ou))
    resource = cfn.describe_stack_resources(StackName="LabClassroom")["StackResources"][0]
    assert resource["PhysicalResourceId"].startswith("ml101-LabStudent:")
    assert stack_instance_states(cfn, "ml101-LabStudent") == {a: "CURRENT (SUCCEEDED)" for a in accounts.values()}
    for account in accounts.values():
        names = member_stacks(aws, account)
        assert len(names) == 1 and names[0].startswith("StackSet-ml101-LabStudent-")
    assert sorted(account for _, account in patched) == sorted(accounts.values())  # point 5: each member seeded


def test_accounts_joining_and_leaving_the_ou_follow_auto_deployment(aws: Any, org: Any, patched: Any) -> None:
    client, ou, accounts = org
    cfn = aws("cloudformation")
    cfn.create_stack(StackName="LabClassroom", TemplateBody=class_template(ou))
    late = ensure_student_accounts(client, ou, "ml101", [("d", "d@example.edu", None)], echo=lambda _: None)["d"]
    assert late in stack_instance_states(cfn, "ml101-LabStudent")  # point 3: MoveAccount into the OU deploys
    root = client.list_roots()["Roots"][0]["Id"]
    leaver = accounts["a"]
    client.move_account(AccountId=leaver, SourceParentId=ou, DestinationParentId=root)
    assert leaver not in stack_instance_states(cfn, "ml101-LabStudent")
    assert member_stacks(aws, leaver) == []  # RetainStacksOnAccountRemoval false: the account's stack is deleted


def test_a_changed_template_updates_every_instance_and_delete_removes_them(aws: Any, org: Any, patched: Any) -> None:
    _, ou, accounts = org
    cfn = aws("cloudformation")
    cfn.create_stack(StackName="LabClassroom", TemplateBody=class_template(ou))
    changed = {"Resources": {**MEMBER_TEMPLATE["Resources"], "Queue": {"Type": "AWS::SQS::Queue"}}}
    cfn.update_stack(StackName="LabClassroom", TemplateBody=class_template(ou, changed))
    account = accounts["b"]
    clients = account_clients(aws("sts"), account, region="us-east-1")
    stack = member_stacks(aws, account)[0]
    types = {r["ResourceType"] for r in clients("cloudformation").describe_stack_resources(
        StackName=stack)["StackResources"]}
    assert types == {"AWS::SNS::Topic", "AWS::SQS::Queue"}
    assert set(stack_instance_states(cfn, "ml101-LabStudent").values()) == {"CURRENT (SUCCEEDED)"}
    cfn.delete_stack(StackName="LabClassroom")
    assert all(member_stacks(aws, a) == [] for a in accounts.values())
    assert not MANAGED
    assert [s["Status"] for s in cfn.list_stack_sets()["Summaries"]] == ["DELETED"]


def test_rollout_runs_in_batches_and_stops_past_the_failure_tolerance(aws: Any, org: Any, patched: Any) -> None:
    """MaxConcurrentCount 1 and FailureToleranceCount 0: the first account fails, the others are cancelled."""
    _, ou, accounts = org
    cfn = aws("cloudformation")
    cfn.create_stack(StackName="LabClassroom", TemplateBody=class_template(
        ou, FAILING_TEMPLATE, MaxConcurrentCount=1, FailureToleranceCount=0))
    managed = next(iter(MANAGED.values()))
    assert len(managed.batches) == 1 and len(managed.batches[0]) == 1
    states = sorted(stack_instance_states(cfn, "ml101-LabStudent").values())
    assert states == ["OUTDATED (CANCELLED)", "OUTDATED (CANCELLED)", "OUTDATED (FAILED)"]
    operations = cfn.list_stack_set_operations(StackSetName="ml101-LabStudent")["Summaries"]
    assert [op["Status"] for op in operations] == ["FAILED"]


def test_concurrency_percentage_sets_the_batch_size(aws: Any, org: Any, patched: Any) -> None:
    _, ou, _ = org
    aws("cloudformation").create_stack(StackName="LabClassroom",
                                       TemplateBody=class_template(ou, MaxConcurrentPercentage=34))
    assert [len(batch) for batch in next(iter(MANAGED.values())).batches] == [1, 1, 1]


def test_assumed_role_credentials_belong_to_the_member_account(aws: Any, org: Any) -> None:
    """What the per-account paths rely on: OrganizationAccountAccessRole's credentials act in the member account."""
    _, _, accounts = org
    account = accounts["c"]
    clients = account_clients(aws("sts"), account, region="us-east-1")
    assert clients("sts").get_caller_identity()["Account"] == account
    assert boto3.client("sts").get_caller_identity()["Account"] != account
    assert emulator_stackset.StackSetResource.cloudformation_type() == "AWS::CloudFormation::StackSet"


NOTEBOOK_TEMPLATE = json.dumps({"Resources": {"Notebook": {"Type": "AWS::SageMaker::NotebookInstance", "Properties": {
    "NotebookInstanceName": "ml101-student", "InstanceType": "ml.t3.medium",
    "RoleArn": "arn:aws:iam::123456789012:role/nb"}}}})


def test_moto_names_a_template_notebook_after_its_stack(aws: Any) -> None:
    """Unpatched: a stack set's `StackSet-...` notebook lacks the course prefix the guard finds notebooks by."""
    aws("cloudformation").create_stack(StackName="StackSet-x", TemplateBody=NOTEBOOK_TEMPLATE)
    (notebook,) = aws("sagemaker").list_notebook_instances()["NotebookInstances"]
    assert notebook["NotebookInstanceName"] != "ml101-student"


def test_the_emulator_keeps_a_template_notebooks_name(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.emulator_server import patch_moto

    patch_moto(assigner(monkeypatch))
    aws("cloudformation").create_stack(StackName="StackSet-x", TemplateBody=NOTEBOOK_TEMPLATE)
    (notebook,) = aws("sagemaker").list_notebook_instances()["NotebookInstances"]
    assert notebook["NotebookInstanceName"] == "ml101-student"
