"""Account-per-student mode: one class stack set, one student-account template, and synthesis that does not
depend on the class size."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Stage, Token
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from course.layout import STUDENT_ACCOUNT_DIR
from stacks.classroom_stack import LabClassroomStack
from tests.conftest import OU, cdk_context, new_app, per_account_config, student_account


def stacks_of(app: App) -> dict[str, Stack]:
    return {child.node.id: child for child in app.node.children if isinstance(child, Stack)}


def classroom_of(app: App) -> LabClassroomStack:
    stack = stacks_of(app)["LabClassroom"]
    assert isinstance(stack, LabClassroomStack)
    return stack


def violations(scope: Any) -> list[str]:
    return [violation.rule_name for violation in AwsSolutionsChecks().validate_scope(scope).violations]


@pytest.fixture(scope="module")
def classroom(per_account_app: App) -> LabClassroomStack:
    return classroom_of(per_account_app)


@pytest.fixture(scope="module")
def student_template(classroom: LabClassroomStack) -> dict[str, Any]:
    return json.loads(classroom.student_template.read_text())  # type: ignore[no-any-return]


def test_app_has_class_stacks_only(per_account_app: App) -> None:
    """No stack per student, and none for LabContainers: students pull containers in their own accounts."""
    stacks = stacks_of(per_account_app)
    assert list(stacks) == ["LabClassroom", "LabRekognition", "LabGuard"]
    assert [stack.stack_name for stack in stacks.values()] == [
        "ml101-LabClassroom", "ml101-LabRekognition", "ml101-LabGuard"]


def test_stack_set_deploys_to_the_ou_with_the_course_rollout(classroom: LabClassroomStack) -> None:
    template = Template.from_stack(classroom)
    template.resource_count_is("AWS::CloudFormation::StackSet", 1)
    (stack_set,) = template.find_resources("AWS::CloudFormation::StackSet").values()
    props = stack_set["Properties"]
    assert (props["StackSetName"], props["PermissionModel"]) == ("ml101-LabStudent", "SERVICE_MANAGED")
    assert props["StackInstancesGroup"] == [{"DeploymentTargets": {"OrganizationalUnitIds": [OU]},
                                             "Regions": ["us-east-1"]}]
    assert props["OperationPreferences"]["MaxConcurrentPercentage"] == 20
    assert props["OperationPreferences"]["FailureTolerancePercentage"] == 5
    outputs = template.to_json()["Outputs"]
    assert (outputs["StackSetName"]["Value"], outputs["OrganizationalUnit"]["Value"]) == ("ml101-LabStudent", OU)


def test_student_template_is_synthesized_into_the_apps_outdir(per_account_app: App,
                                                              classroom: LabClassroomStack) -> None:
    outdir = Path(per_account_app.outdir) / STUDENT_ACCOUNT_DIR
    assert classroom.student_template == outdir / "LabStudent.template.json"
    assert classroom.student_template.is_file()
    # Bootstrapless: no asset manifest, nothing for a student's account to fetch from the class account.
    assert not list(outdir.glob("*.assets.json")) and not list(outdir.glob("asset.*"))


def test_student_template_holds_one_students_labs(student_template: dict[str, Any]) -> None:
    template = Template.from_json(student_template)
    for kind in ("AWS::SageMaker::NotebookInstance", "AWS::EC2::Instance", "AWS::EC2::VPC", "AWS::S3::Bucket"):
        template.resource_count_is(kind, 1)


def test_student_template_runs_in_any_account_without_bootstrap(classroom: LabClassroomStack,
                                                                student_template: dict[str, Any]) -> None:
    assert Token.is_unresolved(classroom.student_stack.account)
    assert Token.is_unresolved(classroom.student_stack.region)
    assert "BootstrapVersion" not in student_template.get("Parameters", {})
    assert "Rules" not in student_template
    rendered = json.dumps(student_template)
    for asset_reference in ("cdk-hnb659fds", "AssetParameters", "S3Key", "asset."):
        assert asset_reference not in rendered


def test_only_the_class_guard_may_assume_the_stop_only_role(student_template: dict[str, Any]) -> None:
    """The guard's reach into a student's account: trusted by the guard's role alone, it can stop and read."""
    template = Template.from_json(student_template)
    role = next(r["Properties"] for r in template.find_resources("AWS::IAM::Role").values()
                if r["Properties"]["RoleName"] == "ml101-guard-stop")
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                                                 ":iam::123456789012:root"]]}}
    assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": {"Fn::Join": ["", [
        "arn:", {"Ref": "AWS::Partition"}, ":iam::123456789012:role/labkit/ml101/ml101-guard"]]}}}
    policies = [p["Properties"] for p in template.find_resources("AWS::IAM::Policy").values()
                if "GuardReach" in json.dumps(p["Properties"]["Roles"])]
    actions = {action for p in policies for st in p["PolicyDocument"]["Statement"]
               for action in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    assert actions == {"sagemaker:ListNotebookInstances", "ec2:DescribeInstances", "cloudwatch:GetMetricStatistics",
                       "sagemaker:ListTags", "sagemaker:StopNotebookInstance", "ec2:StopInstances",
                       "logs:DescribeLogStreams"}


def test_student_bucket_name_comes_from_the_account_it_lands_in(student_template: dict[str, Any]) -> None:
    (bucket,) = Template.from_json(student_template).find_resources("AWS::S3::Bucket").values()
    assert bucket["Properties"]["BucketName"] == {
        "Fn::Join": ["", ["ml101-student-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]]}


def test_student_template_names_no_student_and_no_account(student_template: dict[str, Any]) -> None:
    template = json.loads(json.dumps(student_template))
    trust = next(r["Properties"] for r in template["Resources"].values()
                 if r["Type"] == "AWS::IAM::Role" and r["Properties"]["RoleName"] == "ml101-guard-stop")
    # The class account is named once, in the stop-only role's trust: only the class guard may stop machines here.
    assert "123456789012" in json.dumps(trust.pop("AssumeRolePolicyDocument"))
    rendered = json.dumps(template)
    for index in range(3):
        assert f"s{index:03d}" not in rendered
        assert student_account(index) not in rendered
    # The only other account ids: AWS's Deep Learning Containers registries.
    assert "123456789012" not in rendered
    from lab_scripts.dlc import DLC_REGISTRIES

    assert set(re.findall(r"(?<![0-9])[0-9]{12}(?![0-9])", rendered)) <= set(DLC_REGISTRIES.values())


def test_synthesis_does_not_grow_with_the_class(tmp_path: Path, per_account_app: App) -> None:
    large = new_app(per_account_config(tmp_path, 300))
    small_stacks, large_stacks = stacks_of(per_account_app), stacks_of(large)
    assert list(small_stacks) == list(large_stacks)
    for construct_id, stack in small_stacks.items():
        assert Template.from_stack(stack).to_json() == Template.from_stack(large_stacks[construct_id]).to_json()
    assert classroom_of(per_account_app).student_template.read_text() == \
        classroom_of(large).student_template.read_text()


def test_no_unacknowledged_nag_findings(classroom: LabClassroomStack) -> None:
    assert violations(classroom) == []
    assert violations(classroom.student_stack) == []


def test_guard_never_deletes_the_stack_set(per_account_app: App) -> None:
    """Deleting LabClassroom would delete every student's bucket without `labctl teardown`'s archive."""
    resources = Template.from_stack(stacks_of(per_account_app)["LabGuard"]).find_resources("AWS::Lambda::Function")
    (function,) = resources.values()
    assert function["Properties"]["Environment"]["Variables"]["LABKIT_STACKS"] == "ml101-LabRekognition"


def test_the_guard_reaches_students_accounts_only_through_the_stop_only_role(per_account_app: App) -> None:
    guard = Template.from_stack(stacks_of(per_account_app)["LabGuard"])
    (function,) = guard.find_resources("AWS::Lambda::Function").values()
    variables = function["Properties"]["Environment"]["Variables"]
    assert (variables["LABKIT_STUDENT_STACK_SET"], variables["LABKIT_STUDENT_ROLE"]) == (
        "ml101-LabStudent", "ml101-guard-stop")
    statements = {st["Sid"]: st for policy in guard.find_resources("AWS::IAM::Policy").values()
                  for st in policy["Properties"]["PolicyDocument"]["Statement"]}
    reach = statements["StopInStudentAccounts"]
    assert reach["Action"] == "sts:AssumeRole"
    assert reach["Resource"] == "arn:aws:iam::*:role/labkit/ml101/ml101-guard-stop"
    assert statements["FindStudentAccounts"]["Action"] == "cloudformation:ListStackInstances"
    assert violations(stacks_of(per_account_app)["LabGuard"]) == []


def test_nag_and_cloudformation_validation_run_on_the_student_template(tmp_path: Path) -> None:
    """As app.py builds it: cdk-nag and CDK's validation on both Apps, and the whole app synthesizes."""
    from stacks import build_app

    config = per_account_config(tmp_path, 2)
    app = build_app(App(context=cdk_context(), outdir=str(tmp_path / "out")), config)
    assembly = app.synth()
    assert {stack.stack_name for stack in assembly.stacks} == {unit.stack_name for unit in config.stacks()}
    outdir = Path(Stage.of(classroom_of(app)).outdir) / STUDENT_ACCOUNT_DIR  # type: ignore[union-attr]
    assert (outdir / "LabStudent.template.json").is_file()


def test_an_unacknowledged_finding_in_the_student_template_fails_the_build(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The student App's nag gate can fail: the build stops before any stack set points at the template."""
    from infra import lab_bucket
    from stacks import build_app

    monkeypatch.setattr(lab_bucket, "acknowledge", lambda scope, finding, reason: None)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        build_app(App(context=cdk_context(), outdir=str(tmp_path / "out"), builtin_cloud_formation_validation=False),
                  per_account_config(tmp_path, 1), validation=False)
    report = json.loads((tmp_path / "out" / STUDENT_ACCOUNT_DIR / "validation-report.json").read_text())
    assert "AwsSolutions-S1" in json.dumps(report)


def test_classroom_stack_needs_an_ou() -> None:
    from tests.conftest import make_config

    with pytest.raises(ValueError, match="organizational_unit"):
        LabClassroomStack(App(), "LabClassroom", config=make_config())
