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

from course.naming import TAG_STUDENT

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
        """The physical id behind a template {'Ref': logical} or {'Fn::GetAtt': [logical, ...]} value."""
        if isinstance(value, dict) and "Ref" in value:
            return self.physical.get(value["Ref"], "")
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            return self.physical.get(value["Fn::GetAtt"][0], "")
        return str(value)


class NotFound(Exception):
    """A probe's service answered, and the resource is not there (for APIs that list rather than fail)."""


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
    ignored: tuple[str, ...] = ("VersioningConfiguration",) if wanted and wanted != versioning else ()
    detail = f"versioning {versioning}"
    triggers = props.get("NotificationConfiguration", {}).get("LambdaConfigurations", [])
    if triggers:
        # The emulator accepts the property and configures nothing: the trigger would silently never fire.
        actual = s3.get_bucket_notification_configuration(Bucket=pid).get("LambdaFunctionConfigurations", [])
        detail += f", {len(actual)} of {len(triggers)} Lambda triggers"
        ignored += ("NotificationConfiguration",) if len(actual) != len(triggers) else ()
    return detail, ignored


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


def _instance(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    reservations = ctx.clients("ec2").describe_instances(InstanceIds=[pid])["Reservations"]
    instance = reservations[0]["Instances"][0]
    ignored = _ignored(props, instance, ("InstanceType", "ImageId"))
    wanted_tokens = props.get("MetadataOptions", {}).get("HttpTokens")
    if wanted_tokens and instance.get("MetadataOptions", {}).get("HttpTokens") != wanted_tokens:
        ignored += ("MetadataOptions.HttpTokens",)
    return f"{instance['State']['Name']}, {instance['InstanceType']}, {instance['ImageId']}", ignored


def _instance_profile(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    profile = ctx.clients("iam").get_instance_profile(InstanceProfileName=pid)["InstanceProfile"]
    return f"roles {', '.join(role['RoleName'] for role in profile['Roles'])}", ()


def _alarm(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    alarms = ctx.clients("cloudwatch").describe_alarms(AlarmNames=[pid])["MetricAlarms"]
    if not alarms:
        raise ClientError({"Error": {"Code": "ResourceNotFound", "Message": pid}}, "DescribeAlarms")
    return f"{alarms[0]['StateValue']}, actions {', '.join(alarms[0]['AlarmActions'])}", ()


def _ec2_describe(operation: str, key: str, id_param: str) -> Callable[[_Ctx, str, dict[str, Any]], tuple[str, tuple[str, ...]]]:
    """Probe for EC2 network types: the resource exists if its describe call returns it."""
    def probe(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        found = getattr(ctx.clients("ec2"), operation)(**{id_param: [pid]})[key]
        if not found:
            raise ClientError({"Error": {"Code": "ResourceNotFound", "Message": pid}}, operation)
        return "", ()
    return probe


def _function(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    info = ctx.clients("lambda").get_function(FunctionName=pid)
    config = info["Configuration"]
    ignored = _ignored(props, config, ("Runtime", "Handler", "Timeout", "MemorySize"))
    expected = {
        "Architectures": props.get("Architectures", ["x86_64"]) == config.get("Architectures"),
        "DeadLetterConfig": not props.get("DeadLetterConfig") or bool(config.get("DeadLetterConfig")),
        "LoggingConfig": not props.get("LoggingConfig")
        or config.get("LoggingConfig", {}).get("LogGroup") == ctx.ref(props["LoggingConfig"].get("LogGroup")),
        # Values built from other resources (a topic ARN) are references in the template: compare plain ones.
        "Environment": all(
            config.get("Environment", {}).get("Variables", {}).get(name) == value
            for name, value in props.get("Environment", {}).get("Variables", {}).items() if isinstance(value, str)
        ),
        "Tags": not props.get("Tags") or bool(info.get("Tags")),
    }
    ignored += tuple(name for name, ok in expected.items() if not ok)
    return f"{config['Runtime']}, {config['MemorySize']} MB, {config.get('State', 'state unknown')}", ignored


def _permission(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """Found in the function's resource policy: the emulator creates it without a physical id."""
    function = ctx.ref(props.get("FunctionName"))
    policy = json.loads(ctx.clients("lambda").get_policy(FunctionName=function)["Policy"])
    wanted = props.get("SourceArn")
    for statement in policy.get("Statement", []):
        source = str(statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn"))
        # A source given as a reference (a rule's ARN) ends in the referenced resource's physical id.
        matches = source == wanted if isinstance(wanted, str) else bool(ctx.ref(wanted)) and source.endswith(
            f"/{ctx.ref(wanted)}")
        if statement.get("Principal", {}).get("Service") == props.get("Principal") and matches:
            return f"{props.get('Principal')} may invoke {function}", ()
    raise NotFound(f"no statement for {props.get('Principal')} in the policy of {function}")


def _queue(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    attrs = ctx.clients("sqs").get_queue_attributes(QueueUrl=pid, AttributeNames=["All"])["Attributes"]
    ignored = tuple(
        name for name in ("SqsManagedSseEnabled", "MessageRetentionPeriod")
        if name in props and str(props[name]).lower() != str(attrs.get(name, "")).lower()
    )
    sse = "SSE" if attrs.get("SqsManagedSseEnabled") == "true" or attrs.get("KmsMasterKeyId") else "unencrypted"
    return f"{sse}, {attrs.get('ApproximateNumberOfMessages', '?')} messages", ignored


def _queue_policy(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    sqs = ctx.clients("sqs")
    for queue in props.get("Queues", []):
        if "Policy" not in sqs.get_queue_attributes(QueueUrl=ctx.ref(queue), AttributeNames=["Policy"]).get(
            "Attributes", {}
        ):
            raise NotFound(f"queue {ctx.ref(queue)} has no policy")
    return "", ()


def _log_group(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    groups = ctx.clients("logs").describe_log_groups(logGroupNamePrefix=pid)["logGroups"]
    group = next((g for g in groups if g["logGroupName"] == pid), None)
    if group is None:
        raise NotFound(f"no log group {pid}")
    retention = group.get("retentionInDays")
    ignored = ("RetentionInDays",) if props.get("RetentionInDays") != retention else ()
    return f"retention {retention or 'never expires'} days, {group.get('storedBytes', 0)} bytes", ignored
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


def _rule(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    events = ctx.clients("events")
    rule = events.describe_rule(Name=pid)
    found = events.list_targets_by_rule(Rule=pid)["Targets"]
    ignored = ("Targets",) if len(found) != len(props.get("Targets", [])) else ()
    return f"{rule.get('ScheduleExpression', 'event pattern')}, {rule['State']}, {len(found)} target(s)", ignored


def _topic(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    attributes = ctx.clients("sns").get_topic_attributes(TopicArn=pid)["Attributes"]
    key = attributes.get("KmsMasterKeyId")
    ignored = ("KmsMasterKeyId",) if props.get("KmsMasterKeyId") and not key else ()
    return f"{'encrypted' if key else 'unencrypted'}, {attributes.get('SubscriptionsConfirmed', 0)} subscriber(s)", \
        ignored


def _key(ctx: _Ctx, pid: str, props: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    kms = ctx.clients("kms")
    state = kms.describe_key(KeyId=pid)["KeyMetadata"]["KeyState"]
    rotation = kms.get_key_rotation_status(KeyId=pid)["KeyRotationEnabled"]
    ignored = ("EnableKeyRotation",) if props.get("EnableKeyRotation") and not rotation else ()
    return f"{state}, rotation {'on' if rotation else 'off'}", ignored


PROBES: dict[str, Callable[[_Ctx, str, dict[str, Any]], tuple[str, tuple[str, ...]]]] = {
    "AWS::EC2::Instance": _instance,
    "AWS::EC2::VPC": _ec2_describe("describe_vpcs", "Vpcs", "VpcIds"),
    "AWS::EC2::Subnet": _ec2_describe("describe_subnets", "Subnets", "SubnetIds"),
    "AWS::EC2::SecurityGroup": _ec2_describe("describe_security_groups", "SecurityGroups", "GroupIds"),
    "AWS::EC2::InternetGateway": _ec2_describe("describe_internet_gateways", "InternetGateways",
                                               "InternetGatewayIds"),
    "AWS::EC2::RouteTable": _ec2_describe("describe_route_tables", "RouteTables", "RouteTableIds"),
    "AWS::IAM::InstanceProfile": _instance_profile,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::S3::Bucket": _bucket,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::IAM::Role": _role,
    "AWS::IAM::Policy": _policy,
    "AWS::SageMaker::NotebookInstance": _notebook,
    "AWS::SageMaker::NotebookInstanceLifecycleConfig": _lifecycle,
    "AWS::Lambda::Function": _function,
    "AWS::Lambda::Permission": _permission,
    "AWS::SQS::Queue": _queue,
    "AWS::SQS::QueuePolicy": _queue_policy,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::IAM::User": _user,
    "AWS::IAM::Group": _group,
    "AWS::ECR::Repository": _repository,
    "AWS::Events::Rule": _rule,
    "AWS::SNS::Topic": _topic,
    "AWS::KMS::Key": _key,
}
# Types whose probe finds the resource from its properties, because the emulator gives it no physical id.
_BY_PROPERTIES = {"AWS::Lambda::Permission"}

_NOT_FOUND = {
    "InvalidInstanceID.NotFound", "InvalidVpcID.NotFound", "InvalidSubnetID.NotFound", "InvalidGroup.NotFound",
    "InvalidInternetGatewayID.NotFound", "InvalidRouteTableID.NotFound",
    "NoSuchBucket", "404", "NoSuchBucketPolicy", "NoSuchEntity", "ValidationException", "ResourceNotFound",
    "ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",
    "RepositoryNotFoundException", "NotFound", "NotFoundException",
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


def live_stack_names(cfn: Any) -> list[str]:
    """Names of the account's stacks that exist (ListStacks also lists those deleted in the last 90 days)."""
    return [summary["StackName"] for page in cfn.get_paginator("list_stacks").paginate()
            for summary in page["StackSummaries"] if summary["StackStatus"] != "DELETE_COMPLETE"]


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
        if not pid and kind not in _BY_PROPERTIES:
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
        except NotFound as exc:
            found.append(Found(logical_id, kind, pid, student, MISSING, str(exc)))
            continue
        found.append(Found(logical_id, kind, pid, student, EXISTS, detail, ignored))
    return found
