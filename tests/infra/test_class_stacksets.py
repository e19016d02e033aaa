"""The class stack set: follows the OU, cleans up after leavers, and never lists a student's account."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.class_stacksets import StudentAccountsProps, StudentAccountsStackSet
from tests.conftest import cdk_context

MANAGEMENT_ACCOUNT = "111111111111"
OU = "ou-ab12-cd345678"
STUDENT_TEMPLATE = {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}


def props(template_path: Path, **changes: Any) -> StudentAccountsProps:
    values: dict[str, Any] = {
        "stack_set_name": "ml101-LabSageMaker",
        "template_path": str(template_path),
        "organizational_unit_ids": [OU],
        "regions": ["us-east-1"],
        "max_concurrent_percentage": 25,
        "failure_tolerance_percentage": 10,
        "description": "ml101 student labs",
    }
    return StudentAccountsProps(**{**values, **changes})


@pytest.fixture
def template_path(tmp_path: Path) -> Path:
    path = tmp_path / "student.template.json"
    path.write_text(json.dumps(STUDENT_TEMPLATE))
    return path


def synth(template_path: Path, **changes: Any) -> tuple[Stack, StudentAccountsStackSet]:
    app = App(context=cdk_context(), builtin_cloud_formation_validation=False)
    stack = Stack(app, "ClassStackSets", env=Environment(account=MANAGEMENT_ACCOUNT, region="us-east-1"))
    return stack, StudentAccountsStackSet(stack, "Labs", props=props(template_path, **changes))


def test_stack_set_follows_the_ou_and_removes_stacks_of_leavers(template_path: Path) -> None:
    stack, _ = synth(template_path)
    Template.from_stack(stack).has_resource_properties("AWS::CloudFormation::StackSet", {
        "StackSetName": "ml101-LabSageMaker",
        "Description": "ml101 student labs",
        "PermissionModel": "SERVICE_MANAGED",
        "CallAs": "SELF",
        "AutoDeployment": {"Enabled": True, "RetainStacksOnAccountRemoval": False},
        "Capabilities": ["CAPABILITY_NAMED_IAM"],
        "OperationPreferences": {"MaxConcurrentPercentage": 25, "FailureTolerancePercentage": 10,
                                 "RegionConcurrencyType": "PARALLEL"},
        "ManagedExecution": {"Active": True},
        "StackInstancesGroup": [{"DeploymentTargets": {"OrganizationalUnitIds": [OU]}, "Regions": ["us-east-1"]}],
        "TemplateURL": Match.any_value(),
    })


def test_template_url_is_the_assets_object(template_path: Path) -> None:
    stack, labs = synth(template_path)
    url = stack.resolve(labs.stack_set.template_url)
    assert labs.template.asset_hash in json.dumps(url)
    assert json.dumps(url).startswith('{"Fn::Sub": "https://s3.us-east-1.')


def test_delegated_admin_and_several_regions(template_path: Path) -> None:
    stack, _ = synth(template_path, call_as="DELEGATED_ADMIN", regions=["us-east-1", "eu-west-1"])
    Template.from_stack(stack).has_resource_properties("AWS::CloudFormation::StackSet", {
        "CallAs": "DELEGATED_ADMIN",
        "StackInstancesGroup": [{"DeploymentTargets": {"OrganizationalUnitIds": [OU]},
                                 "Regions": ["us-east-1", "eu-west-1"]}],
    })


def test_class_size_is_not_an_input() -> None:
    """Synthesis cannot grow with the class: nothing in the props can hold a student or an account."""
    fields = {field.name for field in dataclasses.fields(StudentAccountsProps)}
    assert fields == {"stack_set_name", "template_path", "organizational_unit_ids", "regions",
                      "max_concurrent_percentage", "failure_tolerance_percentage", "call_as", "description"}


def test_template_names_no_account_but_the_management_one(template_path: Path) -> None:
    stack, _ = synth(template_path)
    rendered = json.dumps(Template.from_stack(stack).to_json())
    assert set(re.findall(r"(?<![0-9a-f])[0-9]{12}(?![0-9a-f])", rendered)) <= {MANAGEMENT_ACCOUNT}
    targets = Template.from_stack(stack).find_resources("AWS::CloudFormation::StackSet")
    (stack_set,) = targets.values()
    assert [group["DeploymentTargets"] for group in stack_set["Properties"]["StackInstancesGroup"]] == [
        {"OrganizationalUnitIds": [OU]}]


@pytest.mark.parametrize(("change", "message"), [
    ({"organizational_unit_ids": []}, "needs OU ids"),
    ({"organizational_unit_ids": ["123456789012"]}, "needs OU ids"),
    ({"regions": []}, "at least one region"),
    ({"call_as": "MEMBER"}, "call_as must be one of SELF, DELEGATED_ADMIN"),
    ({"max_concurrent_percentage": 0}, "max_concurrent_percentage must be 1-100"),
    ({"failure_tolerance_percentage": 101}, "failure_tolerance_percentage must be 0-100"),
    ({"stack_set_name": "1-labs"}, "CloudFormation stack name '1-labs'"),
])
def test_invalid_props_are_refused_before_synth(template_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        props(template_path, **change)


def test_no_unacknowledged_nag_findings(template_path: Path) -> None:
    stack, _ = synth(template_path)
    assert [violation.rule_name for violation in AwsSolutionsChecks().validate_scope(stack).violations] == []
