"""What a student's credentials may do, asked of the synthesized LabContainers template: alice on her own
notebook, bucket, instance, sessions and repository is allowed; on bob's she is denied. The policy variables are
substituted as IAM does at request time, so the attribute-based statements are really exercised."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk.assertions import Template

from course.config import LabConfig
from course.naming import TAG_COURSE, TAG_STUDENT
from tests.security.iam_eval import ALLOW, Request, evaluate, resolve

ACCOUNT, REGION = "123456789012", "us-east-1"
# IAM's unique ids of the two users (aws:userid); Session Manager tags each session with its starter's.
USER_IDS = {"alice": "AIDAALICE0000000000A", "bob": "AIDABOB000000000000B", "alice-dlc-2": "AIDAALICEDLC200000C"}


@pytest.fixture(scope="module")
def statements(templates: dict[str, Template], config: LabConfig) -> list[dict[str, Any]]:
    """Every statement a student's user gets: the users hold nothing themselves, the group holds it all."""
    template = templates["LabContainers"].to_json()
    arns = {logical_id: f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{resource['Properties']['RepositoryName']}"
            for logical_id, resource in template["Resources"].items() if resource["Type"] == "AWS::ECR::Repository"}
    (group,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Group"]
    found = []
    for policy in group["Properties"]["Policies"]:
        document = resolve(policy["PolicyDocument"], account=ACCOUNT, region=REGION, arns=arns)
        found += document["Statement"]
    assert {"OwnSessions", "OwnNotebook", "OwnObjects"} <= {s.get("Sid") for s in found}
    return found


def caller(config: LabConfig, student: str) -> dict[str, Any]:
    return {"aws:username": config.names.student(student).containers_user, "aws:userid": USER_IDS[student],
            f"aws:PrincipalTag/{TAG_STUDENT}": student, f"aws:PrincipalTag/{TAG_COURSE}": config.course_id}


def owned(student: str, prefix: str = "aws", course: str = "ml101") -> dict[str, str]:
    return {f"{prefix}:ResourceTag/{TAG_STUDENT}": student, f"{prefix}:ResourceTag/{TAG_COURSE}": course}


def decide(statements: list[dict[str, Any]], config: LabConfig, action: str, resource: str,
           context: Mapping[str, Any] | None = None, *, who: str = "alice") -> str:
    return evaluate(statements, Request(action, resource, {**caller(config, who), **(context or {})}))


def notebook(config: LabConfig, student: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:notebook-instance/{config.names.student(student).notebook}"


@pytest.mark.parametrize("action", ["sagemaker:CreatePresignedNotebookInstanceUrl", "sagemaker:StartNotebookInstance",
                                    "sagemaker:StopNotebookInstance", "sagemaker:DescribeNotebookInstance"])
def test_own_notebook_only(statements: list[dict[str, Any]], config: LabConfig, action: str) -> None:
    assert decide(statements, config, action, notebook(config, "alice"), owned("alice")) == ALLOW
    assert decide(statements, config, action, notebook(config, "bob"), owned("bob")) != ALLOW
    # Her name on a notebook is not enough: the tag decides (and another course's notebook never matches).
    assert decide(statements, config, action, notebook(config, "alice"), owned("bob")) != ALLOW
    assert decide(statements, config, action, notebook(config, "alice"), owned("alice", course="ml102")) != ALLOW
    assert decide(statements, config, action, notebook(config, "alice")) != ALLOW


@pytest.mark.parametrize("action", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"])
def test_own_bucket_objects_only(statements: list[dict[str, Any]], config: LabConfig, action: str) -> None:
    own, other = (f"arn:aws:s3:::{config.names.student(s).bucket}" for s in ("alice", "bob"))
    assert decide(statements, config, action, f"{own}/work/model.pt") == ALLOW
    assert decide(statements, config, action, f"{other}/work/model.pt") != ALLOW
    assert decide(statements, config, "s3:ListBucket", own) == ALLOW
    assert decide(statements, config, "s3:ListBucket", other) != ALLOW
    # A caller without a student tag names no bucket at all.
    assert evaluate(statements, Request(action, f"{own}/x", {"aws:username": "intruder"})) != ALLOW


@pytest.mark.parametrize("action", ["ec2:StartInstances", "ec2:StopInstances"])
def test_own_instance_only(statements: list[dict[str, Any]], config: LabConfig, action: str) -> None:
    instance = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"
    assert decide(statements, config, action, instance, owned("alice")) == ALLOW
    assert decide(statements, config, action, instance, owned("bob")) != ALLOW
    assert decide(statements, config, action, instance) != ALLOW
    assert decide(statements, config, "ec2:TerminateInstances", instance, owned("alice")) != ALLOW


def test_sessions_start_on_own_instance_only(statements: list[dict[str, Any]], config: LabConfig) -> None:
    instance = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"
    document = f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/SSM-SessionManagerRunShell"
    assert decide(statements, config, "ssm:StartSession", instance, owned("alice", "ssm")) == ALLOW
    assert decide(statements, config, "ssm:StartSession", instance, owned("bob", "ssm")) != ALLOW
    assert decide(statements, config, "ssm:StartSession", document) == ALLOW
    other_document = f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/AWS-RunShellScript"
    assert decide(statements, config, "ssm:StartSession", other_document) != ALLOW


def session(config: LabConfig, student: str) -> tuple[str, dict[str, str]]:
    """A session of `student` as Session Manager makes it: '<user>-<random>', tagged with the starter's user id."""
    user = config.names.student(student).containers_user
    return (f"arn:aws:ssm:{REGION}:{ACCOUNT}:session/{user}-0a1b2c3d4e5f67890",
            {"ssm:resourceTag/aws:ssmmessages:session-id": USER_IDS[student]})


@pytest.mark.parametrize("action", ["ssm:ResumeSession", "ssm:TerminateSession"])
def test_own_sessions_only_even_when_user_names_share_a_prefix(statements: list[dict[str, Any]], config: LabConfig,
                                                               action: str) -> None:
    """alice's user 'ml101-alice-dlc' is a prefix of 'ml101-alice-dlc-2-dlc' (student id 'alice-dlc-2'): the
    session pattern '<user>-*' alone would match that classmate's sessions."""
    for student in ("alice", "bob", "alice-dlc-2"):
        arn, tags = session(config, student)
        expected = student == "alice"
        assert (decide(statements, config, action, arn, tags) == ALLOW) is expected, student
        # and the classmate cannot reach alice's either
        if student != "alice":
            own_arn, own_tags = session(config, "alice")
            assert decide(statements, config, action, own_arn, own_tags, who=student) != ALLOW
    assert config.names.student("alice-dlc-2").containers_user.startswith(
        config.names.student("alice").containers_user + "-")


def repository(config: LabConfig, student: str | None) -> str:
    name = config.names.class_repository if student is None else config.names.student(student).class_repository
    return f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}"


@pytest.mark.parametrize("action", ["ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:BatchGetImage",
                                    "ecr:GetDownloadUrlForLayer", "ecr:ListImages", "ecr:DescribeImages"])
def test_own_repository_push_pull_and_list_only(statements: list[dict[str, Any]], config: LabConfig,
                                                action: str) -> None:
    assert decide(statements, config, action, repository(config, "alice")) == ALLOW
    assert decide(statements, config, action, repository(config, "bob")) != ALLOW


def test_course_repository_is_pull_only(statements: list[dict[str, Any]], config: LabConfig) -> None:
    """Where the instructor pushes the base image: alice pulls and lists it, but cannot push a tag there (in
    one shared repository she could overwrite or evict a classmate's image)."""
    shared = repository(config, None)
    for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:ListImages", "ecr:DescribeImages"):
        assert decide(statements, config, action, shared) == ALLOW, action
    for action in ("ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:CompleteLayerUpload", "ecr:BatchDeleteImage"):
        assert decide(statements, config, action, shared) != ALLOW, action


@pytest.mark.parametrize("action", ["ecr:BatchDeleteImage", "ecr:DeleteRepository", "ecr:SetRepositoryPolicy",
                                    "ecr:PutLifecyclePolicy", "ecr:PutImageTagMutability", "ecr:CreateRepository"])
def test_no_repository_changes_even_on_her_own(statements: list[dict[str, Any]], config: LabConfig,
                                               action: str) -> None:
    assert decide(statements, config, action, repository(config, "alice")) != ALLOW


@pytest.mark.parametrize(("action", "resource"), [
    ("sagemaker:AddTags", "notebook"),
    ("ec2:CreateTags", "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"),
    ("ecr:TagResource", "repository"),
    ("iam:TagUser", "arn:aws:iam::123456789012:user/labkit/ml101/ml101-alice-dlc"),
    ("s3:PutBucketTagging", "bucket"),
])
def test_she_cannot_tag_her_resources_or_herself_with_bobs_tag(statements: list[dict[str, Any]], config: LabConfig,
                                                                action: str, resource: str) -> None:
    """Tags decide who owns what, so no student may write one: retagged as bob, her machine (or she) would be his."""
    arn = {"notebook": notebook(config, "alice"), "repository": repository(config, "alice"),
           "bucket": f"arn:aws:s3:::{config.names.student('alice').bucket}"}.get(resource, resource)
    request_tags = {f"aws:RequestTag/{TAG_STUDENT}": "bob", "aws:TagKeys": [TAG_STUDENT], **owned("alice")}
    assert decide(statements, config, action, arn, request_tags) != ALLOW
    assert decide(statements, config, "iam:UntagUser", arn, {"aws:TagKeys": [TAG_STUDENT]}) != ALLOW


def test_nothing_is_allowed_on_every_resource_but_finding_and_logging_in(statements: list[dict[str, Any]],
                                                                         config: LabConfig) -> None:
    """A made-up ARN tells which actions hold on any resource: only the two without resource-level permissions."""
    anything = "arn:aws:iam::999999999999:role/admin"
    allowed = sorted(action for statement in statements for action in
                     (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
                     if decide(statements, config, action, anything) == ALLOW)
    assert allowed == ["ec2:DescribeInstances", "ecr:GetAuthorizationToken"]
