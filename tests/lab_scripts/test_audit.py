"""The leftover audit under moto: finds each kind of course resource, ignores other courses."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from lab_scripts.audit import NOTEBOOK_LOG_GROUP, audit_course
from lab_scripts.class_repository import layerless_manifest
from course.naming import TAG_COURSE
from tests.lab_scripts.conftest import create_notebook

PATH = "/labkit/ml101/"


def kinds(report: Any) -> set[tuple[str, str]]:
    return {(item.kind, item.name) for item in report.leftovers}


def test_empty_account_is_clean(aws: Any) -> None:
    report = audit_course(aws, "ml101", PATH)
    assert report.clean and report.billable == []


def test_finds_every_kind_of_leftover(aws: Any) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket="ml101-alice-b")
    s3.put_object(Bucket="ml101-alice-b", Key="x", Body=b"1")
    s3.create_bucket(Bucket="ml101-bob-b")
    aws("iam").create_role(RoleName="ml101-alice-notebook", Path=PATH, AssumeRolePolicyDocument="{}")
    aws("iam").create_user(UserName="ml101-carol", Path=PATH)
    create_notebook(aws, "ml101-alice")
    aws("logs").create_log_group(logGroupName=NOTEBOOK_LOG_GROUP)
    aws("logs").create_log_stream(logGroupName=NOTEBOOK_LOG_GROUP, logStreamName="ml101-alice/jupyter.log")
    aws("cloudformation").create_stack(StackName="ml101-LabSageMaker", TemplateBody='{"Resources": {}}')

    report = audit_course(aws, "ml101", PATH)
    assert kinds(report) >= {
        ("bucket", "ml101-alice-b"), ("bucket", "ml101-bob-b"), ("role", "ml101-alice-notebook"),
        ("user", "ml101-carol"), ("notebook", "ml101-alice"), ("stack", "ml101-LabSageMaker"),
        ("log stream", f"{NOTEBOOK_LOG_GROUP}:ml101-alice/jupyter.log"),
    }
    billable = {item.name for item in report.billable}
    assert "ml101-alice-b" in billable and "ml101-bob-b" not in billable  # an empty bucket costs nothing
    assert "ml101-alice" in billable  # stopped or not, a notebook bills for storage


def test_other_courses_and_deleted_stacks_are_not_leftovers(aws: Any) -> None:
    aws("s3").create_bucket(Bucket="ml102-alice-b")
    aws("iam").create_role(RoleName="other", Path="/labkit/ml102/", AssumeRolePolicyDocument="{}")
    cfn = aws("cloudformation")
    cfn.create_stack(StackName="ml101-Old", TemplateBody='{"Resources": {}}')
    cfn.delete_stack(StackName="ml101-Old")
    assert audit_course(aws, "ml101", PATH).clean


def test_tagged_resources_outside_the_naming_scheme_are_found(aws: Any) -> None:
    aws("s3").create_bucket(Bucket="renamed-by-hand")
    aws("s3").put_bucket_tagging(Bucket="renamed-by-hand",
                                 Tagging={"TagSet": [{"Key": TAG_COURSE, "Value": "ml101"}]})
    assert any(item.name.endswith("renamed-by-hand") for item in audit_course(aws, "ml101", PATH).leftovers)


def test_unlistable_lifecycle_configs_are_rechecked_by_name(aws: Any) -> None:
    # moto cannot list lifecycle configs; the audit must say so and check the names it was given.
    aws("sagemaker").create_notebook_instance_lifecycle_config(
        NotebookInstanceLifecycleConfigName="ml101-alice-autostop", OnStart=[{"Content": "ZWNobw=="}])
    report = audit_course(aws, "ml101", PATH, known=[("lifecycle config", "ml101-alice-autostop"),
                                                       ("lifecycle config", "ml101-gone")])
    assert kinds(report) == {("lifecycle config", "ml101-alice-autostop")}
    assert report.unchecked == ["SageMaker lifecycle configs: the endpoint cannot list these; re-checked the 2 "
                                "seen at deploy by name"]


def test_real_errors_are_not_swallowed(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    def denied(service: str) -> Any:
        client = aws(service)
        if service == "s3":
            def refuse(**_: Any) -> Any:
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListBuckets")
            client.list_buckets = refuse
        return client

    with pytest.raises(ClientError, match="AccessDenied"):
        audit_course(denied, "ml101", PATH)


def create_function(aws: Any, name: str) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("handler.py", "def lambda_handler(event, context):\n    return {}\n")
    role = aws("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.lambda_handler",
                                  Code={"ZipFile": archive.getvalue()})


def test_finds_functions_queues_and_their_log_groups(aws: Any) -> None:
    create_function(aws, "ml101-rekognition-labels")
    create_function(aws, "ml102-rekognition-labels")
    aws("sqs").create_queue(QueueName="ml101-rekognition-failed")
    aws("sqs").create_queue(QueueName="ml102-rekognition-failed")
    logs = aws("logs")
    for group in ("/aws/lambda/ml101-rekognition-labels", "/aws/lambda/ml102-x", "/aws/lambda/ml101-old"):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName="/aws/lambda/ml101-old", logStreamName="s")
    logs.put_log_events(logGroupName="/aws/lambda/ml101-old", logStreamName="s",
                        logEvents=[{"timestamp": 1_790_000_000_000, "message": "labelled"}])

    report = audit_course(aws, "ml101", PATH)
    assert kinds(report) == {
        ("function", "ml101-rekognition-labels"), ("queue", "ml101-rekognition-failed"),
        ("log group", "/aws/lambda/ml101-rekognition-labels"), ("log group", "/aws/lambda/ml101-old"),
    }
    assert {item.name for item in report.billable} == {"/aws/lambda/ml101-old"}  # the only one holding logs
def test_access_keys_groups_and_class_repository_are_leftovers(aws: Any) -> None:
    iam = aws("iam")
    iam.create_user(UserName="ml101-alice-dlc", Path=PATH)
    key = iam.create_access_key(UserName="ml101-alice-dlc")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="ml101-alice-dlc", AccessKeyId=key, Status="Inactive")
    iam.create_group(GroupName="ml101-containers", Path=PATH)
    ecr = aws("ecr")
    ecr.create_repository(repositoryName="ml101-class")
    ecr.put_image(repositoryName="ml101-class", imageTag="v1", imageManifest=layerless_manifest("v1"))
    ecr.create_repository(repositoryName="ml101-empty")
    ecr.create_repository(repositoryName="ml102-class")

    report = audit_course(aws, "ml101", PATH)
    assert kinds(report) == {
        ("user", "ml101-alice-dlc"), ("access key", f"ml101-alice-dlc/{key}"), ("group", "ml101-containers"),
        ("repository", "ml101-class"), ("repository", "ml101-empty"),
    }
    # An inactive key is still a leftover: anyone can reactivate it while the user exists.
    assert next(i for i in report.leftovers if i.kind == "access key").detail == "Inactive"
    assert {item.name for item in report.billable} == {"ml101-class"}  # stored images bill, an empty repo not


def test_billable_leftovers_carry_an_hourly_estimate(aws: Any) -> None:
    from lab_scripts import prices

    ec2 = aws("ec2")
    tags = [{"ResourceType": "volume", "Tags": [{"Key": TAG_COURSE, "Value": "ml101"}]}]
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=100, TagSpecifications=tags)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{**tags[0], "ResourceType": "snapshot"}])
    aws("s3").create_bucket(Bucket="ml101-alice-b")
    aws("s3").put_object(Bucket="ml101-alice-b", Key="model.pt", Body=b"w" * 2048)
    create_notebook(aws, "ml101-alice")
    aws("sagemaker").stop_notebook_instance(NotebookInstanceName="ml101-alice")

    by_name = {item.name: item for item in audit_course(aws, "ml101", PATH).billable}
    assert by_name[volume].usd_per_hour == pytest.approx(100 * 0.08 / 730)
    assert by_name[snapshot["SnapshotId"]].usd_per_hour == pytest.approx(100 * 0.05 / 730)
    assert by_name["ml101-alice-b"].usd_per_hour == pytest.approx(prices.storage_per_hour(0.023, 2048))
    # A stopped notebook pays for its storage volume only.
    assert by_name["ml101-alice"].usd_per_hour == pytest.approx(5 * 0.14 / 730)
    assert prices.notebook_per_hour("ml.t3.medium", "InService", 5) == pytest.approx(0.05 + 5 * 0.14 / 730)
    assert prices.instance_per_hour("g4dn.xlarge", "running") == 0.526
    assert prices.instance_per_hour("g4dn.xlarge", "stopped") == 0.0
    assert prices.notebook_per_hour("ml.x9.huge", "InService", 5) is None  # unknown: shown as '?'


def test_guard_topic_schedule_and_budget_are_leftovers(aws: Any) -> None:
    aws("sns").create_topic(Name="ml101-guard-reports")
    aws("sns").create_topic(Name="ml102-guard-reports")
    aws("events").put_rule(Name="ml101-guard-schedule", ScheduleExpression="rate(30 minutes)")
    aws("budgets").create_budget(AccountId="123456789012", Budget={
        "BudgetName": "ml101-class-budget", "BudgetType": "COST", "TimeUnit": "MONTHLY",
        "BudgetLimit": {"Amount": "150", "Unit": "USD"}})
    key = aws("kms").create_key(Tags=[{"TagKey": TAG_COURSE, "TagValue": "ml101"}])["KeyMetadata"]["KeyId"]
    aws("kms").schedule_key_deletion(KeyId=key, PendingWindowInDays=7)

    report = audit_course(aws, "ml101", PATH)
    assert kinds(report) == {("topic", "ml101-guard-reports"), ("rule", "ml101-guard-schedule"),
                             ("budget", "ml101-class-budget")}  # the key waits out its window, unbilled
    assert report.billable == []
