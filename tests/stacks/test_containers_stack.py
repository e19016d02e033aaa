"""LabContainers template: pull-only DLC access per student through one group, nothing more, nothing retained."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Template

from infra.lab_containers import ContainerAccess, ContainersProps
from lab_scripts.dlc import REPOSITORIES, registry_account
from course.config import LabConfig
from course.naming import TAG_COURSE, TAG_STUDENT

USER = "AWS::IAM::User"
GROUP = "AWS::IAM::Group"
REPOSITORY = "AWS::ECR::Repository"


@pytest.fixture(scope="module")
def template(templates: dict[str, Template]) -> Template:
    return templates["LabContainers"]


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every IAM statement of the template, wherever it sits (inline on a principal or a policy resource)."""
    found = []
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        documents = [policy["PolicyDocument"] for policy in props.get("Policies", [])]
        if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            documents.append(props["PolicyDocument"])
        found += [statement for document in documents for statement in document["Statement"]]
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_one_user_per_student_in_the_course_group(template: Template, config: LabConfig) -> None:
    template.resource_count_is(USER, len(config.students))
    template.resource_count_is(GROUP, 1)
    template.has_resource_properties(GROUP, {"GroupName": config.names.containers_group,
                                             "Path": config.names.iam_path})
    group_id = next(iter(template.find_resources(GROUP)))
    for student in config.students:
        template.has_resource_properties(USER, {
            "UserName": config.names.student(student).containers_user,
            "Path": config.names.iam_path,
            "Groups": [{"Ref": group_id}],
        })


def test_users_are_tagged_with_course_and_student(template: Template, config: LabConfig) -> None:
    tagged = {}
    for resource in template.find_resources(USER).values():
        tags = {tag["Key"]: tag["Value"] for tag in resource["Properties"]["Tags"]}
        assert tags[TAG_COURSE] == config.course_id
        tagged[tags[TAG_STUDENT]] = resource["Properties"]["UserName"]
    assert tagged == {s: config.names.student(s).containers_user for s in config.students}
    for resource in template.find_resources(REPOSITORY).values():
        assert {"Key": TAG_COURSE, "Value": config.course_id} in resource["Properties"]["Tags"]


def test_users_hold_no_permissions_or_credentials_of_their_own(template: Template) -> None:
    for resource in template.find_resources(USER).values():
        assert not {"Policies", "ManagedPolicyArns", "LoginProfile"} & set(resource["Properties"])
    for kind in ("AWS::IAM::AccessKey", "AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
        template.resource_count_is(kind, 0)


def test_no_full_access_and_no_wildcard_actions(template: Template) -> None:
    text = json.dumps(template.to_json())
    assert "FullAccess" not in text and "ManagedPolicyArns" not in text
    actions = [action for statement in statements(template.to_json()) for action in as_list(statement["Action"])]
    assert actions and all("*" not in action for action in actions), actions


def test_only_the_registry_login_is_on_every_resource(template: Template) -> None:
    unscoped = [s for s in statements(template.to_json()) if "*" in as_list(s["Resource"])]
    assert sorted((s["Action"], s["Resource"]) for s in unscoped) == [
        ("ec2:DescribeInstances", "*"), ("ecr:GetAuthorizationToken", "*")]


def test_pulls_are_limited_to_the_course_repositories_of_the_regions_dlc_account(
    template: Template, config: LabConfig
) -> None:
    pull = next(s for s in statements(template.to_json()) if s.get("Sid") == "PullDeepLearningContainers")
    assert sorted(as_list(pull["Action"])) == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    account = registry_account(config.region)
    assert pull["Resource"] == [f"arn:aws:ecr:{config.region}:{account}:repository/{name}" for name in REPOSITORIES]


def test_each_student_has_an_own_immutable_repository_and_the_course_one_shared(template: Template,
                                                                               config: LabConfig) -> None:
    repositories = {resource["Properties"]["RepositoryName"]: resource
                    for resource in template.find_resources(REPOSITORY).values()}
    assert sorted(repositories) == sorted([config.names.class_repository] + [
        config.names.student(student).class_repository for student in config.students])
    for name, repository in repositories.items():
        assert repository["DeletionPolicy"] == "Delete" and repository["UpdateReplacePolicy"] == "Delete"
        props = repository["Properties"]
        assert props["EmptyOnDelete"] is True and props["ImageScanningConfiguration"] == {"ScanOnPush": True}
        # A tag names one image for good: nobody re-points another's tag or leaves their image untagged.
        assert props["ImageTagMutability"] == "IMMUTABLE", name
        # The lifecycle rules count per repository, so one student's pushes never evict another's images.
        rules = json.loads(props["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
        assert {rule["selection"]["tagStatus"] for rule in rules} == {"untagged", "any"}
        assert any(rule["selection"].get("countNumber") == config.containers.keep_images for rule in rules)
    for student in config.students:
        tags = repositories[config.names.student(student).class_repository]["Properties"]["Tags"]
        assert {"Key": TAG_STUDENT, "Value": student} in tags


def test_one_repository_statement_for_the_class_and_no_delete_or_create(template: Template) -> None:
    by_sid = {s.get("Sid"): s for s in statements(template.to_json())}
    push, shared = by_sid["PushPullOwnRepository"], by_sid["PullCourseImages"]
    # Named by the caller's own tag: the statement does not grow with the class.
    assert push["Resource"] == ("arn:aws:ecr:us-east-1:123456789012:repository/ml101-class/"
                                "${aws:PrincipalTag/labkit:student}")
    assert shared["Resource"] == "arn:aws:ecr:us-east-1:123456789012:repository/ml101-class"
    assert "ecr:PutImage" in push["Action"] and "ecr:PutImage" not in shared["Action"]
    for statement in (push, shared):
        assert not [a for a in statement["Action"] if re.search(r"Delete|Policy|Tag|Create", a)], statement
    repository_statements = [s for s in statements(template.to_json()) if "repository/ml101-class" in
                             json.dumps(s["Resource"])]
    assert len(repository_statements) == 2


def test_nothing_is_retained_and_no_custom_resources(template: Template) -> None:
    for logical_id, resource in template.to_json()["Resources"].items():
        assert resource.get("DeletionPolicy", "Delete") == "Delete", logical_id
        assert not resource["Type"].startswith("Custom::"), logical_id


def test_outputs_name_users_never_credentials(template: Template, config: LabConfig) -> None:
    outputs = template.to_json()["Outputs"]
    assert not [key for key in outputs if re.search(r"secret|password|key|token", key, re.IGNORECASE)]
    assert "AccessKey" not in json.dumps(outputs)
    # One output names the users' pattern: an output per user would stop at CloudFormation's 200 outputs.
    assert outputs["UserNames"]["Value"] == "ml101-<student>-dlc"
    assert outputs["StudentRepositoryUris"]["Value"]["Fn::Join"][1][-1] == "/ml101-class/<student>"
    assert len(outputs) == 4  # group, users, course repository, students' repositories


def test_without_class_repository_there_is_only_pull_and_student_access(config: LabConfig) -> None:
    stack = Stack(App(builtin_cloud_formation_validation=False), "Probe",
                  env=Environment(account=config.account, region="eu-south-1"))
    ContainerAccess(stack, "Containers", props=ContainersProps(
        names=config.names, students=("alice",), region="eu-south-1", class_repository=False, keep_images=5))
    template = Template.from_stack(stack)
    template.resource_count_is(REPOSITORY, 0)
    (group,) = template.find_resources(GROUP).values()
    assert [policy["PolicyName"] for policy in group["Properties"]["Policies"]] == ["dlc-pull", "student-access"]
    # Milan's DLCs live in an account of their own, not in 763104351884.
    assert "692866216735:repository/pytorch-training" in json.dumps(group)


def _student_access(template: Template) -> dict[str, dict[str, Any]]:
    (group,) = template.find_resources(GROUP).values()
    policy, = (p for p in group["Properties"]["Policies"] if p["PolicyName"] == "student-access")
    return {statement["Sid"]: statement for statement in policy["PolicyDocument"]["Statement"]}


def test_students_reach_only_machines_tagged_with_their_own_student_id(template: Template) -> None:
    """Attribute-based: one class policy compares the caller's student tag with the machine's."""
    statements = _student_access(template)
    caller = "${aws:PrincipalTag/labkit:student}"
    for sid, prefix in (("OwnNotebook", "aws"), ("OwnInstance", "aws"), ("OwnInstanceSession", "ssm")):
        assert statements[sid]["Condition"] == {"StringEquals": {
            f"{prefix}:ResourceTag/{TAG_STUDENT}": caller, f"{prefix}:ResourceTag/{TAG_COURSE}": "ml101"}}, sid
    mutating = {a for s in statements.values() for a in as_list(s["Action"]) if re.search(r":(Start|Stop|Create)", a)}
    assert mutating == {"sagemaker:CreatePresignedNotebookInstanceUrl", "sagemaker:StartNotebookInstance",
                        "sagemaker:StopNotebookInstance", "ec2:StartInstances", "ec2:StopInstances",
                        "ssm:StartSession"}
    assert not [s for s in statements.values() if re.search(r"Terminate|Delete(?!Object)", json.dumps(s["Action"]))
                and s["Sid"] != "OwnSessions"]


def test_students_bucket_is_named_by_their_own_tag(template: Template) -> None:
    statements = _student_access(template)
    bucket = "arn:aws:s3:::ml101-${aws:PrincipalTag/labkit:student}-123456789012-us-east-1"
    assert json.dumps(statements["OwnBucket"]["Resource"]).count("PrincipalTag") == 1
    assert bucket in json.dumps(statements["OwnBucket"]["Resource"])
    assert bucket + "/*" in json.dumps(statements["OwnObjects"]["Resource"])
