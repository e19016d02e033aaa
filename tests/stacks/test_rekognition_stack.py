"""LabRekognition template: the trigger, exact permissions, a DLQ, a log group that goes with the stack."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, FileSystem, Stack
from aws_cdk.assertions import Match, Template

from infra import image_labeler
from infra.image_labeler import ImageLabeler, ImageLabelerProps
from lab_scripts.rekognition_fn.handler import FEATURES, Analysis, Settings
from course.config import LabConfig
from course.naming import TAG_COURSE, RekognitionNames
from tests.conftest import cdk_context

NAMES = RekognitionNames("ml101", "123456789012", "us-east-1")


@pytest.fixture(scope="module")
def template(templates: dict[str, Template]) -> Template:
    return templates["LabRekognition"]


@pytest.fixture(scope="module")
def resources(template: Template) -> dict[str, Any]:
    return template.to_json()["Resources"]  # type: ignore[no-any-return]


def one(resources: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    found = [(logical_id, r) for logical_id, r in resources.items() if r["Type"] == kind]
    assert len(found) == 1, kind
    return found[0]


def test_one_of_each_resource_with_derived_names(template: Template, config: LabConfig) -> None:
    names = config.names.rekognition
    for kind, props in {
        "AWS::S3::Bucket": {"BucketName": names.bucket},
        "AWS::Lambda::Function": {"FunctionName": names.function},
        "AWS::SQS::Queue": {"QueueName": names.dead_letter_queue},
        "AWS::Logs::LogGroup": {"LogGroupName": names.log_group},
        "AWS::IAM::Role": {"RoleName": names.role, "Path": config.names.iam_path},
    }.items():
        template.resource_count_is(kind, 1)
        template.has_resource_properties(kind, props)


def test_trigger_is_l1_notification_on_uploads_images_only(resources: dict[str, Any]) -> None:
    _, bucket = one(resources, "AWS::S3::Bucket")
    function_id, _ = one(resources, "AWS::Lambda::Function")
    permission_id, _ = one(resources, "AWS::Lambda::Permission")
    rules = bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    filters = set()
    for rule in rules:
        assert rule["Event"] == "s3:ObjectCreated:*"
        assert rule["Function"] == {"Fn::GetAtt": [function_id, "Arn"]}
        by_name = {item["Name"]: item["Value"] for item in rule["Filter"]["S3Key"]["Rules"]}
        filters.add((by_name["prefix"], by_name["suffix"]))
    assert filters == {("uploads/", s) for s in (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")}
    # S3 checks the invoke permission when the configuration is set, so the bucket waits for it.
    assert bucket["DependsOn"] == [permission_id]
    kinds = {r["Type"] for r in resources.values()}
    assert not {k for k in kinds if k.startswith("Custom::") or k == "AWS::CloudFormation::CustomResource"}


def test_results_never_retrigger_the_function(resources: dict[str, Any]) -> None:
    _, function = one(resources, "AWS::Lambda::Function")
    env = function["Properties"]["Environment"]["Variables"]
    assert not env["LABKIT_RESULTS_PREFIX"].startswith(env["LABKIT_UPLOADS_PREFIX"])


def test_invoke_permission_names_the_bucket_without_a_reference(resources: dict[str, Any],
                                                                config: LabConfig) -> None:
    function_id, _ = one(resources, "AWS::Lambda::Function")
    _, permission = one(resources, "AWS::Lambda::Permission")
    assert permission["Properties"] == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
        "Principal": "s3.amazonaws.com",
        "SourceArn": f"arn:aws:s3:::{config.names.rekognition.bucket}",
        "SourceAccount": config.account,
    }


def statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    _, policy = one(resources, "AWS::IAM::Policy")
    return policy["Properties"]["PolicyDocument"]["Statement"]  # type: ignore[no-any-return]


def test_permissions_are_exactly_what_the_function_uses(resources: dict[str, Any], config: LabConfig) -> None:
    log_id, _ = one(resources, "AWS::Logs::LogGroup")
    queue_id, _ = one(resources, "AWS::SQS::Queue")
    bucket = f"arn:aws:s3:::{config.names.rekognition.bucket}"
    granted = {(str(s["Action"]), str(s["Resource"])) for s in statements(resources)}
    assert granted == {
        ("rekognition:DetectLabels", "*"),
        ("s3:GetObject", f"{bucket}/uploads/*"),
        ("s3:PutObject", f"{bucket}/results/*"),
        (str(["logs:CreateLogStream", "logs:PutLogEvents"]), str({"Fn::GetAtt": [log_id, "Arn"]})),
        ("sqs:SendMessage", str({"Fn::GetAtt": [queue_id, "Arn"]})),
    }
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in statements(resources))
    _, role = one(resources, "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role["Properties"]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}]


def labeler_template(features: tuple[str, ...]) -> dict[str, Any]:
    app = App(context=cdk_context(), builtin_cloud_formation_validation=False)
    stack = Stack(app, "Probe", env={"account": "123456789012", "region": "us-east-1"})
    ImageLabeler(stack, "Labels", props=ImageLabelerProps(
        names=NAMES, iam_path="/labkit/ml101/", settings=Settings(Analysis(features))))
    return Template.from_stack(stack).to_json()["Resources"]  # type: ignore[no-any-return]


def test_each_feature_adds_exactly_its_rekognition_action() -> None:
    detect = [s for s in statements(labeler_template(tuple(FEATURES))) if s["Resource"] == "*"]
    assert len(detect) == 1
    assert sorted(detect[0]["Action"]) == [
        "rekognition:DetectFaces", "rekognition:DetectLabels", "rekognition:DetectModerationLabels",
        "rekognition:DetectText"]


def test_function_runtime_code_and_environment(resources: dict[str, Any], config: LabConfig) -> None:
    log_id, _ = one(resources, "AWS::Logs::LogGroup")
    queue_id, _ = one(resources, "AWS::SQS::Queue")
    _, function = one(resources, "AWS::Lambda::Function")
    props = function["Properties"]
    assert (props["Runtime"], props["Handler"], props["Timeout"]) == ("python3.14", "handler.lambda_handler", 120)
    assert Settings.from_env(props["Environment"]["Variables"]) == Settings(analysis=Analysis(**dataclasses.asdict(config.rekognition)))
    # Lambda writes to the stack's own log group instead of creating /aws/lambda/<fn> outside the stack.
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": log_id}}
    assert props["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert (image_labeler.HANDLER_DIR / "handler.py").is_file()


def test_log_group_expires_and_goes_with_the_stack(template: Template) -> None:
    template.has_resource("AWS::Logs::LogGroup", {
        "Properties": {"RetentionInDays": 14}, "DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"})


def test_dead_letter_queue_is_encrypted_tls_only_and_deleted(template: Template,
                                                             resources: dict[str, Any]) -> None:
    template.has_resource("AWS::SQS::Queue", {
        "Properties": {"SqsManagedSseEnabled": True}, "DeletionPolicy": "Delete"})
    _, policy = one(resources, "AWS::SQS::QueuePolicy")
    statement, = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})


def test_nothing_retained_and_everything_tagged(resources: dict[str, Any], config: LabConfig) -> None:
    for logical_id, resource in resources.items():
        assert resource.get("DeletionPolicy", "Delete") == "Delete", logical_id
        tags = resource["Properties"].get("Tags")
        if tags is not None:
            assert {"Key": TAG_COURSE, "Value": config.course_id} in tags, logical_id
    taggable = {"AWS::S3::Bucket", "AWS::Lambda::Function", "AWS::SQS::Queue", "AWS::Logs::LogGroup", "AWS::IAM::Role"}
    assert all("Tags" in r["Properties"] for r in resources.values() if r["Type"] in taggable)


def test_bucket_is_the_lab_bucket(template: Template) -> None:
    template.has_resource_properties("AWS::S3::Bucket", {
        "VersioningConfiguration": {"Status": "Enabled"},
        "PublicAccessBlockConfiguration": Match.object_like({"BlockPublicAcls": True}),
    })


def test_caches_do_not_change_the_asset_hash(tmp_path: Path) -> None:
    """Running pytest writes __pycache__ beside the handler; the deployed asset must not change because of it."""
    copy = tmp_path / "asset"
    shutil.copytree(image_labeler.HANDLER_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = FileSystem.fingerprint(str(copy), exclude=image_labeler.ASSET_EXCLUDE)
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\x00")
    (copy / "tests").mkdir()
    (copy / "tests" / "test_x.py").write_text("")
    assert FileSystem.fingerprint(str(copy), exclude=image_labeler.ASSET_EXCLUDE) == before
