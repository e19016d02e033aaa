"""Inventory under moto's CloudFormation: the synthesized LabSageMaker template, checked per service."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from lab_scripts.inventory import EXISTS, MISSING, SKIPPED, physical_ids_by_student, stack_inventory

STACK = "ml101-LabSageMaker"


@pytest.fixture
def deployed(aws: Any, templates: dict[str, Template]) -> dict[str, Any]:
    template = templates["LabSageMaker"].to_json()
    aws("ssm").put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String")
    aws("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    return template  # type: ignore[no-any-return]


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
    assert {row.student for row in rows["AWS::SageMaker::NotebookInstance"]} == {"alice", "bob"}


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
    assert set(notebooks) == {"alice", "bob"}
    described = aws("sagemaker").describe_notebook_instance(NotebookInstanceName=notebooks["bob"].rsplit("/", 1)[-1])
    assert described["NotebookInstanceStatus"] == "InService"


def test_students_of_a_missing_stack_is_empty(aws: Any) -> None:
    assert physical_ids_by_student(aws, "ml101-Nothing", "AWS::SageMaker::NotebookInstance") == {}
