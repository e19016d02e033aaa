"""Inventory under moto's CloudFormation: the synthesized LabSageMaker template, checked per service."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from aws_cdk.assertions import Template

from lab_scripts.inventory import EXISTS, MISSING, SKIPPED, physical_ids_by_student, stack_inventory
from tests.lab_scripts.conftest import create_lab_stack

STACK = "ml101-LabSageMaker-alice"


@pytest.fixture
def deployed(aws: Any, templates: dict[str, Template]) -> dict[str, Any]:
    return create_lab_stack(aws, STACK, templates["LabSageMaker-alice"].to_json())


def by_type(found: list[Any]) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {}
    for row in found:
        rows.setdefault(row.type, []).append(row)
    return rows


def test_every_template_resource_gets_a_row(aws: Any, deployed: dict[str, Any]) -> None:
    found = stack_inventory(aws, STACK, deployed)
    assert {row.logical_id for row in found} == set(deployed["Resources"])


def test_services_confirm_buckets_roles_notebooks(aws: Any, deployed: dict[str, Any]) -> None:
    rows = by_type(stack_inventory(aws, STACK, deployed))
    for kind in ("AWS::S3::Bucket", "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::SageMaker::NotebookInstance",
                 "AWS::SageMaker::NotebookInstanceLifecycleConfig"):
        assert {row.state for row in rows[kind]} == {EXISTS}, kind
    assert {row.student for row in rows["AWS::SageMaker::NotebookInstance"]} == {"alice"}


def test_types_the_emulator_skips_are_named(aws: Any, deployed: dict[str, Any]) -> None:
    rows = by_type(stack_inventory(aws, STACK, deployed))
    assert {row.state for row in rows["AWS::S3::BucketPolicy"]} == {SKIPPED}


def test_ignored_properties_are_reported(aws: Any, deployed: dict[str, Any]) -> None:
    notebook = by_type(stack_inventory(aws, STACK, deployed))["AWS::SageMaker::NotebookInstance"][0]
    assert {"NotebookInstanceName", "RootAccess", "LifecycleConfigName"} <= set(notebook.ignored)


def test_resource_deleted_behind_cloudformation_is_missing(aws: Any, deployed: dict[str, Any]) -> None:
    bucket = next(r for r in stack_inventory(aws, STACK, deployed) if r.type == "AWS::S3::Bucket")
    aws("s3").delete_bucket(Bucket=bucket.physical_id)
    again = next(r for r in stack_inventory(aws, STACK, deployed) if r.logical_id == bucket.logical_id)
    assert again.state == MISSING
    assert again.detail in {"service says NoSuchBucket", "service says 404"}


def test_notebooks_are_found_per_student_from_the_deployed_template(aws: Any, deployed: dict[str, Any]) -> None:
    notebooks = physical_ids_by_student(aws, STACK, "AWS::SageMaker::NotebookInstance")
    assert set(notebooks) == {"alice"}
    described = aws("sagemaker").describe_notebook_instance(NotebookInstanceName=notebooks["alice"].rsplit("/", 1)[-1])
    assert described["NotebookInstanceStatus"] == "InService"


def test_students_of_a_missing_stack_is_empty(aws: Any) -> None:
    assert physical_ids_by_student(aws, "ml101-Nothing", "AWS::SageMaker::NotebookInstance") == {}


LABELS_STACK = "ml101-LabRekognition"


@pytest.fixture
def labeler(aws: Any, templates: dict[str, Template]) -> dict[str, Any]:
    """LabRekognition created by moto's CloudFormation, with its Lambda code where the CDK asset would be."""
    template = templates["LabRekognition"].to_json()
    _, function = next((k, r) for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function")
    code = function["Properties"]["Code"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("handler.py", "def lambda_handler(event, context):\n    return {}\n")
    aws("s3").create_bucket(Bucket=code["S3Bucket"])
    aws("s3").put_object(Bucket=code["S3Bucket"], Key=code["S3Key"], Body=archive.getvalue())
    aws("ssm").put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String")
    aws("cloudformation").create_stack(StackName=LABELS_STACK, TemplateBody=json.dumps(template))
    return template  # type: ignore[no-any-return]


def test_labeler_resources_are_checked_through_their_services(aws: Any, labeler: dict[str, Any]) -> None:
    rows = {row.type: row for row in stack_inventory(aws, LABELS_STACK, labeler)}
    for kind in ("AWS::Lambda::Function", "AWS::Lambda::Permission", "AWS::SQS::Queue", "AWS::Logs::LogGroup",
                 "AWS::S3::Bucket", "AWS::IAM::Role"):
        assert rows[kind].state == EXISTS, (kind, rows[kind])
    assert rows["AWS::Logs::LogGroup"].detail == "retention 14 days, 0 bytes"
    assert rows["AWS::Lambda::Permission"].detail.startswith("s3.amazonaws.com may invoke")
    assert rows["AWS::SQS::QueuePolicy"].state == SKIPPED


def test_what_the_emulator_ignores_on_the_labeler_is_named(aws: Any, labeler: dict[str, Any]) -> None:
    rows = {row.type: row for row in stack_inventory(aws, LABELS_STACK, labeler)}
    # moto's CloudFormation accepts these properties and applies none of them.
    assert "NotificationConfiguration" in rows["AWS::S3::Bucket"].ignored
    assert "0 of 6 Lambda triggers" in rows["AWS::S3::Bucket"].detail
    assert {"DeadLetterConfig", "LoggingConfig", "Architectures"} <= set(rows["AWS::Lambda::Function"].ignored)
    assert "Environment" not in rows["AWS::Lambda::Function"].ignored


def test_labeler_resources_deleted_behind_cloudformation_are_missing(aws: Any, labeler: dict[str, Any]) -> None:
    rows = {row.type: row for row in stack_inventory(aws, LABELS_STACK, labeler)}
    aws("logs").delete_log_group(logGroupName=rows["AWS::Logs::LogGroup"].physical_id)
    aws("sqs").delete_queue(QueueUrl=rows["AWS::SQS::Queue"].physical_id)
    aws("lambda").delete_function(FunctionName=rows["AWS::Lambda::Function"].physical_id)
    again = {row.type: row for row in stack_inventory(aws, LABELS_STACK, labeler)}
    for kind in ("AWS::Logs::LogGroup", "AWS::SQS::Queue", "AWS::Lambda::Function", "AWS::Lambda::Permission"):
        assert again[kind].state == MISSING, (kind, again[kind])
CONTAINERS = "ml101-LabContainers"


@pytest.fixture
def containers(aws: Any, templates: dict[str, Template]) -> dict[str, Any]:
    return create_lab_stack(aws, CONTAINERS, templates["LabContainers"].to_json())


def test_container_users_exist_and_what_moto_skipped_is_named(aws: Any, containers: dict[str, Any]) -> None:
    rows = by_type(stack_inventory(aws, CONTAINERS, containers))
    users = rows["AWS::IAM::User"]
    assert {(row.student, row.state, row.physical_id) for row in users} == {
        ("alice", EXISTS, "ml101-alice-dlc"), ("bob", EXISTS, "ml101-bob-dlc")}
    # moto has no AWS::IAM::Group: the group, its inline policies and the memberships do not exist there.
    assert [row.state for row in rows["AWS::IAM::Group"]] == [SKIPPED]
    assert all({"Groups", "Tags"} <= set(row.ignored) for row in users)
    # The course's shared repository and each student's own.
    repositories = rows["AWS::ECR::Repository"]
    assert sorted(row.physical_id for row in repositories) == ["ml101-class", "ml101-class/alice", "ml101-class/bob"]
    assert all(row.state == EXISTS and "LifecyclePolicy" in row.ignored for row in repositories)


def test_container_user_shows_its_access_keys(aws: Any, containers: dict[str, Any]) -> None:
    aws("iam").create_access_key(UserName="ml101-alice-dlc")
    alice = next(r for r in stack_inventory(aws, CONTAINERS, containers)
                 if r.student == "alice" and r.type == "AWS::IAM::User")
    assert "1 access key(s)" in alice.detail


def test_group_probe_reports_members_and_policies(aws: Any) -> None:
    """Where the group exists (AWS), the probe reads members and inline policies back from IAM."""
    from lab_scripts.inventory import PROBES, _Ctx

    iam = aws("iam")
    iam.create_group(GroupName="ml101-containers")
    iam.create_user(UserName="ml101-alice-dlc")
    iam.add_user_to_group(GroupName="ml101-containers", UserName="ml101-alice-dlc")
    statement = {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}
    iam.put_group_policy(GroupName="ml101-containers", PolicyName="dlc-pull",
                         PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    props = {"Policies": [{"PolicyName": "dlc-pull"}, {"PolicyName": "class-repository"}]}
    detail, ignored = PROBES["AWS::IAM::Group"](_Ctx(aws, {}), "ml101-containers", props)
    assert detail == "1 member(s), inline policies: dlc-pull" and ignored == ("Policies",)
    detail, ignored = PROBES["AWS::IAM::User"](_Ctx(aws, {"G": "ml101-containers"}), "ml101-alice-dlc",
                                                {"Groups": [{"Ref": "G"}]})
    assert "groups: ml101-containers" in detail and ignored == ()


def test_repository_deleted_behind_cloudformation_is_missing(aws: Any, containers: dict[str, Any]) -> None:
    aws("ecr").delete_repository(repositoryName="ml101-class")
    (row,) = [r for r in stack_inventory(aws, CONTAINERS, containers)
              if r.type == "AWS::ECR::Repository" and r.physical_id == "ml101-class"]
    assert (row.state, row.detail) == (MISSING, "service says RepositoryNotFoundException")
