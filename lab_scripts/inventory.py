"""What a deployed lab stack really created, asked of each service rather than taken on CloudFormation's word.

An emulator (and, rarely, AWS) can report CREATE_COMPLETE for a resource that does not exist or that
ignored some of its properties; this module says which, per resource.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from labkit.naming import TAG_STUDENT

ClientFactory = Callable[[str], Any]

EXISTS, MISSING, SKIPPED, UNCHECKED = "exists", "missing", "skipped", "unchecked"


@dataclass(frozen=True)
class Found:
    logical_id: str
    type: str
    physical_id: str
    student: str
    state: str
    detail: str = ""
    ignored: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Ctx:
    clients: ClientFactory
    physical: dict[str, str]

    def ref(self, value: Any) -> str:
        """The physical id behind a template {'Ref': logical} value."""
        if isinstance(value, dict) and "Ref" in value:
            return self.physical.get(value["Ref"], "")
        return str(value)


def _name_from_arn(physical_id: str) -> str:
    return physical_id.rsplit("/", 1)[-1]


def _ignored(props: dict[str, Any], actual: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, ...]:
    """Template properties the service reports differently: the emulator skipped them, or the stack drifted."""
    return tuple(k for k in keys if isinstance(props.get(k), (str, int)) and actual.get(k) != props[k])


def _bucket(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    s3 = ctx.clients("s3")
    s3.head_bucket(Bucket=pid)
    versioning = s3.get_bucket_versioning(Bucket=pid).get("Status", "Disabled")
    wanted = props.get("VersioningConfiguration", {}).get("Status")
    return f"versioning {versioning}", ("VersioningConfiguration",) if wanted and wanted != versioning else ()


def _bucket_policy(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    ctx.clients("s3").get_bucket_policy(Bucket=ctx.ref(props.get("Bucket")))
    return "", ()


def _role(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    role = ctx.clients("iam").get_role(RoleName=pid)["Role"]
    return f"path {role['Path']}", ()


def _policy(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    iam = ctx.clients("iam")
    roles = [ctx.ref(role) for role in props.get("Roles", [])]
    for role in roles:
        iam.get_role_policy(RoleName=role, PolicyName=props["PolicyName"])
    return f"on {', '.join(roles)}", ()


def _notebook(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    info = ctx.clients("sagemaker").describe_notebook_instance(NotebookInstanceName=_name_from_arn(pid))
    ignored = _ignored(
        props, info, ("NotebookInstanceName", "InstanceType", "VolumeSizeInGB", "RootAccess", "DirectInternetAccess")
    )
    if props.get("LifecycleConfigName") and not info.get("NotebookInstanceLifecycleConfigName"):
        ignored += ("LifecycleConfigName",)
    return f"{info['NotebookInstanceStatus']}, {info['InstanceType']}", ignored


def _lifecycle(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    ctx.clients("sagemaker").describe_notebook_instance_lifecycle_config(
        NotebookInstanceLifecycleConfigName=_name_from_arn(pid)
    )
    return "", ()


def _missing_tags(props: dict[str, Any], actual: list[dict[str, str]]) -> tuple[str, ...]:
    wanted = {tag["Key"] for tag in props.get("Tags", []) if isinstance(tag, dict)}
    return ("Tags",) if wanted - {tag["Key"] for tag in actual} else ()


def _user(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    iam = ctx.clients("iam")
    user = iam.get_user(UserName=pid)["User"]
    groups = {group["GroupName"] for group in iam.list_groups_for_user(UserName=pid)["Groups"]}
    keys = iam.list_access_keys(UserName=pid)["AccessKeyMetadata"]
    # A group CloudFormation did not create has no physical id: the membership cannot exist either.
    wanted = {ctx.ref(group) or "?" for group in props.get("Groups", [])}
    ignored = (("Groups",) if wanted - groups else ()) + _missing_tags(props, iam.list_user_tags(UserName=pid)["Tags"])
    return f"path {user['Path']}, groups: {', '.join(sorted(groups)) or 'none'}, {len(keys)} access key(s)", ignored


def _group(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    iam = ctx.clients("iam")
    members = iam.get_group(GroupName=pid)["Users"]
    policies = set(iam.list_group_policies(GroupName=pid)["PolicyNames"])
    wanted = {policy["PolicyName"] for policy in props.get("Policies", [])}
    ignored = ("Policies",) if wanted - policies else ()
    return f"{len(members)} member(s), inline policies: {', '.join(sorted(policies)) or 'none'}", ignored


def _repository(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    ecr = ctx.clients("ecr")
    repo = ecr.describe_repositories(repositoryNames=[pid])["repositories"][0]
    ignored = _missing_tags(props, ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"])
    if props.get("LifecyclePolicy"):
        try:
            ecr.get_lifecycle_policy(repositoryName=pid)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "LifecyclePolicyNotFoundException":
                raise
            ignored += ("LifecyclePolicy",)
    scan = repo.get("imageScanningConfiguration", {}).get("scanOnPush", False)
    if props.get("ImageScanningConfiguration", {}).get("ScanOnPush", scan) != scan:
        ignored += ("ImageScanningConfiguration",)
    images = ecr.list_images(repositoryName=pid)["imageIds"]
    return f"{len(images)} image(s), scan on push {'on' if scan else 'off'}", ignored


PROBES: dict[str, Callable[[_Ctx, str, dict[str, Any]], tuple[str, tuple[str, ...]]]] = {
    "AWS::S3::Bucket": _bucket,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::IAM::Role": _role,
    "AWS::IAM::Policy": _policy,
    "AWS::SageMaker::NotebookInstance": _notebook,
    "AWS::SageMaker::NotebookInstanceLifecycleConfig": _lifecycle,
    "AWS::IAM::User": _user,
    "AWS::IAM::Group": _group,
    "AWS::ECR::Repository": _repository,
}

_NOT_FOUND = {
    "NoSuchBucket", "404", "NoSuchBucketPolicy", "NoSuchEntity", "ValidationException", "ResourceNotFound",
    "ResourceNotFoundException", "RepositoryNotFoundException",
}


def _student(resource: dict[str, Any]) -> str:
    tags = resource.get("Properties", {}).get("Tags", [])
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, dict) and tag.get("Key") == TAG_STUDENT:
                return str(tag.get("Value"))
    return "-"


def _physical_ids(clients: ClientFactory, stack_name: str) -> dict[str, str]:
    summaries = clients("cloudformation").get_paginator("list_stack_resources").paginate(StackName=stack_name)
    return {
        row["LogicalResourceId"]: row.get("PhysicalResourceId", "")
        for page in summaries
        for row in page["StackResourceSummaries"]
        if row.get("LogicalResourceId")
    }


def physical_ids_by_student(clients: ClientFactory, stack_name: str, kind: str) -> dict[str, str]:
    """Student id -> physical id of their `kind` resource, read from the deployed template's student tags.

    Names are not assumed: an emulator may generate its own, and the deployed template is the truth.
    """
    cfn = clients("cloudformation")
    try:
        body = cfn.get_template(StackName=stack_name)["TemplateBody"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return {}
        raise
    template = body if isinstance(body, dict) else json.loads(body)
    physical = _physical_ids(clients, stack_name)
    return {
        _student(resource): physical[logical_id]
        for logical_id, resource in template.get("Resources", {}).items()
        if resource["Type"] == kind and physical.get(logical_id) and _student(resource) != "-"
    }


def stack_inventory(clients: ClientFactory, stack_name: str, template: dict[str, Any]) -> list[Found]:
    """One row per template resource: does it exist, per the service that owns it?"""
    physical = _physical_ids(clients, stack_name)
    ctx = _Ctx(clients, physical)
    found = []
    for logical_id, resource in template.get("Resources", {}).items():
        kind = resource["Type"]
        if kind == "AWS::CDK::Metadata":
            continue
        pid, student = physical.get(logical_id, ""), _student(resource)
        if not pid:
            found.append(Found(logical_id, kind, "", student, SKIPPED, "CloudFormation created nothing for it"))
            continue
        probe = PROBES.get(kind)
        if probe is None:
            found.append(Found(logical_id, kind, pid, student, UNCHECKED, "no service check for this type"))
            continue
        try:
            detail, ignored = probe(ctx, pid, resource.get("Properties", {}))
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code not in _NOT_FOUND:
                raise
            found.append(Found(logical_id, kind, pid, student, MISSING, f"service says {code}"))
            continue
        found.append(Found(logical_id, kind, pid, student, EXISTS, detail, ignored))
    return found
