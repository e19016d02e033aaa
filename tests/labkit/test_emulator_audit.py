"""The audit after the emulator's teardowns: stacks in every state and exports are leftovers, each with the command
that removes it; what the course keeps (stacks that stay, keys waiting out their window) is not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lab_scripts.audit import audit_course, stack_fix, stack_states
from labkit.emulator_cfn import patch_cloudformation
from tests.lab_scripts.conftest import assigner
from tests.labkit.test_emulator_cfn import _vpc_stack, cdk_template

PATH = "/labkit/ml101/"
COURSE_TAG = [{"Key": "labkit:course", "Value": "ml101"}]


@pytest.fixture
def cfn(aws: Any) -> Any:
    aws("ssm").put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String")
    return aws("cloudformation")


def _left(report: Any, kind: str) -> dict[str, Any]:
    return {item.name: item for item in report.leftovers if item.kind == kind}


def test_every_stack_state_but_deleted_is_audited() -> None:
    assert "REVIEW_IN_PROGRESS" in stack_states() and "DELETE_FAILED" in stack_states()
    assert "ROLLBACK_COMPLETE" in stack_states() and "DELETE_COMPLETE" not in stack_states()


@pytest.mark.parametrize(("status", "command"), [
    ("REVIEW_IN_PROGRESS", "aws cloudformation delete-stack --stack-name ml101-Lab"),
    ("ROLLBACK_COMPLETE", "aws cloudformation delete-stack --stack-name ml101-Lab"),
    ("DELETE_FAILED", "labctl teardown"),
    ("UPDATE_ROLLBACK_FAILED", "aws cloudformation continue-update-rollback --stack-name ml101-Lab"),
    ("CREATE_IN_PROGRESS", "wait until it settles"),
])
def test_each_stack_state_has_the_command_that_removes_it(status: str, command: str) -> None:
    assert stack_fix("ml101-Lab", status).startswith(command)


def test_a_change_set_never_run_and_a_failed_delete_are_leftovers_with_their_fix(
    cfn: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch_cloudformation(monkeypatch.setattr)
    cfn.create_change_set(StackName="ml101-LabSageMaker-alice", ChangeSetName="cdk-deploy-change-set",
                          ChangeSetType="CREATE", TemplateBody=json.dumps(cdk_template()))
    cfn.create_stack(StackName="ml101-LabGuard", TemplateBody=json.dumps(cdk_template()))
    _vpc_stack(cfn, aws)
    cfn.delete_stack(StackName="ml101-LabDLAMI")
    report = audit_course(aws, "ml101", PATH)
    stacks = _left(report, "stack")
    assert {name: item.detail for name, item in stacks.items()} == {
        "ml101-LabSageMaker-alice": "REVIEW_IN_PROGRESS", "ml101-LabDLAMI": "DELETE_FAILED",
        "ml101-LabGuard": "CREATE_COMPLETE"}
    assert stacks["ml101-LabSageMaker-alice"].fix == "aws cloudformation delete-stack --stack-name ml101-LabSageMaker-alice"
    assert stacks["ml101-LabDLAMI"].fix.startswith("labctl teardown")
    export = _left(report, "export")["ml101-LabDLAMI:Vpc"]
    assert export.detail == "exported by stack ml101-LabDLAMI (DELETE_FAILED)"
    assert "delete-stack --stack-name ml101-LabDLAMI" in export.fix
    assert "ml101-Topic" not in _left(report, "export")  # a live stack's export goes with its stack


def test_an_export_whose_stack_is_gone_is_a_leftover(cfn: Any, aws: Any) -> None:
    """Unpatched moto: a failed delete forgets the stack and keeps its export (what blocked the next course)."""
    _vpc_stack(cfn, aws)
    with pytest.raises(Exception, match="DependencyViolation"):
        cfn.delete_stack(StackName="ml101-LabDLAMI")
    export = _left(audit_course(aws, "ml101", PATH), "export")["ml101-LabDLAMI:Vpc"]
    assert export.detail == "its stack ml101-LabDLAMI no longer exists" and "labctl local down" in export.fix


def test_a_learner_stack_without_the_course_prefix_is_found_by_its_tag(cfn: Any, aws: Any) -> None:
    cfn.create_stack(StackName="LabSageMaker", TemplateBody=json.dumps(cdk_template(export="LabTopic")),
                     Tags=COURSE_TAG)
    report = audit_course(aws, "ml101", PATH)
    assert set(_left(report, "stack")) == {"LabSageMaker"} and not _left(report, "export")


def _guard_stack(cfn: Any) -> None:
    template = {"Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": []}, "Tags": COURSE_TAG}},
                              "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "ml101-guard-reports"}}},
                "Outputs": {"Topic": {"Value": {"Ref": "Topic"}, "Export": {"Name": "ml101-LabGuard:Topic"}}}}
    cfn.create_stack(StackName="ml101-LabGuard", TemplateBody=json.dumps(template), Tags=COURSE_TAG)


def test_what_a_stack_that_stays_holds_is_not_left_by_a_one_student_destroy(
    cfn: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labkit.emulator_server import patch_moto

    patch_moto(assigner(monkeypatch))  # CloudFormation KMS keys with their tags, as in the emulator
    _guard_stack(cfn)
    whole = audit_course(aws, "ml101", PATH)
    assert {item.kind for item in whole.leftovers} >= {"stack", "topic", "tagged resource"}
    kept = audit_course(aws, "ml101", PATH, keep_stacks=["ml101-LabGuard"], students=["alice"])
    assert kept.clean and kept.in_kept_stacks >= 3


def test_a_one_student_destroy_counts_only_that_students_leftovers(cfn: Any, aws: Any) -> None:
    s3 = aws("s3")
    for student in ("alice", "alice2", "bob"):
        s3.create_bucket(Bucket=f"ml101-{student}-123456789012-us-east-1")
    ec2 = aws("ec2")
    image = ec2.register_image(Name="test image")["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[{"ResourceType": "instance", "Tags": [
        *COURSE_TAG, {"Key": "labkit:student", "Value": "alice"}]}])
    report = audit_course(aws, "ml101", PATH, students=["alice"])
    assert {(item.kind, item.student) for item in report.leftovers} == {("bucket", "alice"), ("instance", "alice")}
    assert len(audit_course(aws, "ml101", PATH).leftovers) == 4


def test_a_key_waiting_out_its_deletion_window_is_pending_not_left(aws: Any) -> None:
    kms = aws("kms")
    metadata = kms.create_key(Tags=[{"TagKey": "labkit:course", "TagValue": "ml101"}])["KeyMetadata"]
    key = metadata["Arn"]
    assert [item.name for item in audit_course(aws, "ml101", PATH).leftovers] == [key]
    kms.schedule_key_deletion(KeyId=metadata["KeyId"], PendingWindowInDays=7)
    report = audit_course(aws, "ml101", PATH)
    assert report.clean and [item.name for item in report.pending] == [key]
    assert report.pending[0].detail.startswith("deleted on ")
