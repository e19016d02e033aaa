"""LabSageMaker template: one isolated notebook per student, least privilege, nothing retained."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from course.config import LabConfig
from course.naming import TAG_COURSE, TAG_STUDENT
from tests.conftest import lab_template


@pytest.fixture(scope="module")
def template(templates: dict[str, Template]) -> Template:
    """Every student's LabSageMaker-<student> stack together."""
    return lab_template(templates, "LabSageMaker")


def test_one_stack_per_student(templates: dict[str, Template], config: LabConfig) -> None:
    for student in config.students:
        own = templates[f"LabSageMaker-{student}"]
        own.resource_count_is("AWS::SageMaker::NotebookInstance", 1)
        own.has_resource_properties("AWS::SageMaker::NotebookInstance",
                                    {"NotebookInstanceName": config.names.student(student).notebook})
    assert "LabSageMaker" not in templates


def of_type(template: Template, kind: str) -> dict[str, Any]:
    return template.find_resources(kind)


def test_one_notebook_bucket_role_and_lifecycle_per_student(template: Template, config: LabConfig) -> None:
    for kind in ("AWS::SageMaker::NotebookInstance", "AWS::S3::Bucket", "AWS::IAM::Role",
                 "AWS::SageMaker::NotebookInstanceLifecycleConfig"):
        template.resource_count_is(kind, len(config.students))
    for student in config.students:
        names = config.names.student(student)
        template.has_resource_properties("AWS::S3::Bucket", {"BucketName": names.bucket})
        template.has_resource_properties("AWS::SageMaker::NotebookInstance", {"NotebookInstanceName": names.notebook})


def test_notebook_is_locked_down(template: Template) -> None:
    template.all_resources_properties(
        "AWS::SageMaker::NotebookInstance",
        {
            "RootAccess": "Disabled",
            "InstanceType": "ml.t3.medium",
            "VolumeSizeInGB": 10,
            "InstanceMetadataServiceConfiguration": {"MinimumInstanceMetadataServiceVersion": "2"},
            "LifecycleConfigName": Match.any_value(),
        },
    )


def test_every_taggable_resource_carries_course_and_student(template: Template, config: LabConfig) -> None:
    for kind in ("AWS::SageMaker::NotebookInstance", "AWS::S3::Bucket", "AWS::IAM::Role"):
        for resource in of_type(template, kind).values():
            tags = {tag["Key"]: tag["Value"] for tag in resource["Properties"]["Tags"]}
            assert tags[TAG_COURSE] == config.course_id
            assert tags[TAG_STUDENT] in config.students


def test_nothing_is_retained_on_destroy(template: Template) -> None:
    for logical_id, resource in template.to_json()["Resources"].items():
        assert resource.get("DeletionPolicy", "Delete") == "Delete", logical_id
        assert resource.get("UpdateReplacePolicy", "Delete") == "Delete", logical_id


def test_no_custom_resources_or_lambdas(template: Template) -> None:
    kinds = {resource["Type"] for resource in template.to_json()["Resources"].values()}
    assert not {k for k in kinds if k.startswith("Custom::") or k == "AWS::CloudFormation::CustomResource"}
    assert "AWS::Lambda::Function" not in kinds


def test_role_reaches_only_its_own_bucket_and_notebook(templates: dict[str, Template], config: LabConfig) -> None:
    for student in config.students:
        own = templates[f"LabSageMaker-{student}"]
        policy, = own.find_resources("AWS::IAM::Policy").values()
        text = json.dumps(policy["Properties"]["PolicyDocument"])
        bucket_id, = own.find_resources("AWS::S3::Bucket")
        assert bucket_id in text
        assert f"notebook-instance/{config.names.student(student).notebook}" in text
        for other in set(config.students) - {student}:
            assert config.names.student(other).notebook not in text
            assert config.names.student(other).bucket not in text


def test_no_wildcard_actions_or_star_resources(template: Template) -> None:
    for policy in of_type(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in action for action in actions), actions
            assert statement["Resource"] != "*"
    template.resource_count_is("AWS::IAM::ManagedPolicy", 0)
    for role in of_type(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_role_trust_is_sagemaker_for_this_account_only(template: Template, config: LabConfig) -> None:
    template.all_resources_properties(
        "AWS::IAM::Role",
        {
            "Path": config.names.iam_path,
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {
                        "Action": "sts:AssumeRole",
                        "Effect": "Allow",
                        "Principal": {"Service": "sagemaker.amazonaws.com"},
                        "Condition": {"StringEquals": {"aws:SourceAccount": config.account}},
                    }
                ]
            },
        },
    )


def test_bucket_is_private_encrypted_tls_only(template: Template) -> None:
    template.all_resources_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
        },
    )
    for policy in of_type(template, "AWS::S3::BucketPolicy").values():
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_lifecycle_script_is_inline_and_sets_idle_limit(template: Template, config: LabConfig) -> None:
    for lifecycle in of_type(template, "AWS::SageMaker::NotebookInstanceLifecycleConfig").values():
        content = lifecycle["Properties"]["OnStart"][0]["Content"]
        script = content["Fn::Base64"] if isinstance(content, dict) else base64.b64decode(content).decode()
        assert f"--idle-minutes {config.sagemaker.idle_minutes}" in script
        assert "curl" not in script and "wget" not in script and "https://raw" not in script


def test_outputs_name_no_secrets(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    assert outputs
    assert not [key for key in outputs if any(w in key.lower() for w in ("secret", "password", "key", "token"))]


def lifecycle_script(own: Template) -> str:
    lifecycle, = own.find_resources("AWS::SageMaker::NotebookInstanceLifecycleConfig").values()
    content = lifecycle["Properties"]["OnStart"][0]["Content"]
    return content["Fn::Base64"] if isinstance(content, dict) else base64.b64decode(content).decode()


def test_lifecycle_script_syncs_the_volume_to_the_students_own_prefix(templates: dict[str, Template],
                                                                      config: LabConfig) -> None:
    for student in config.students:
        script = lifecycle_script(templates[f"LabSageMaker-{student}"])
        names = config.names.student(student)
        assert f"BUCKET={names.bucket}\nPREFIX=notebook/\nREGION={config.region}\n" in script
        assert "/etc/cron.d/labkit-sync" in script and "nohup /bin/bash /opt/labkit/sync-notebook.sh" in script
        assert len(script) <= 16_384


def test_sync_statement_writes_only_under_the_notebook_prefix(templates: dict[str, Template],
                                                            config: LabConfig) -> None:
    for student in config.students:
        own = templates[f"LabSageMaker-{student}"]
        policy, = own.find_resources("AWS::IAM::Policy").values()
        bucket_id, = own.find_resources("AWS::S3::Bucket")
        statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
        sync = statements["SyncNotebookVolume"]
        assert sync["Effect"] == "Allow"
        assert sorted(sync["Action"]) == ["s3:AbortMultipartUpload", "s3:PutObject"]
        assert sync["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/notebook/*"]]}
        # `aws s3 sync` lists the prefix to compare; the bucket-level statement allows that.
        assert "s3:ListBucket" in statements["ListOwnBucket"]["Action"]
