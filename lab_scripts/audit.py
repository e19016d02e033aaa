"""Finds everything of a course that still exists, so "destroyed" can be proved rather than assumed.

Looks by name prefix, IAM path and tag, through each service's own API, because tags are missing on
some resources (log streams, resources created by services) and CloudFormation forgets deleted stacks.
Stacks are listed in every state but DELETE_COMPLETE (a REVIEW_IN_PROGRESS stack of a change set never run, a
DELETE_FAILED network, a ROLLBACK_COMPLETE creation) and so are the region's exports, because an export that
outlives its course blocks the next one ("Export names must be unique"). Each stack comes with the command that
removes it in its state.

A partial destroy (one student, some labs) audits with `keep_stacks`, the course's stacks that stay: what they
hold is the course's own, not a leftover. A KMS key waiting out its deletion window is going by itself: it is
listed in `pending`, never as a leftover.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import botocore.session
from botocore.exceptions import ClientError

from lab_scripts import prices
from lab_scripts.preserve import TAG_PRESERVED_FROM as PRESERVED_FROM
from course.naming import TAG_COURSE, TAG_STUDENT

ClientFactory = Callable[[str], Any]

NOTEBOOK_LOG_GROUP = "/aws/sagemaker/NotebookInstances"
LAMBDA_LOG_GROUP_PREFIX = "/aws/lambda/"


@dataclass(frozen=True)
class Leftover:
    service: str
    kind: str
    name: str
    billable: bool
    detail: str = ""
    # Estimated cost while it stays (lab_scripts.prices); None where the price table does not know the type.
    usd_per_hour: float | None = None
    # Student data kept on purpose at course end (a GPU home snapshot): billed, but not a leftover to clean up.
    kept: bool = False
    # The command that removes it, where one command does (stacks in any state, exports).
    fix: str = ""
    # The student it belongs to, where its tag or name says so.
    student: str = ""


@dataclass
class AuditReport:
    leftovers: list[Leftover] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    # Going by themselves, not billed meanwhile: KMS keys pending deletion (detail: the deletion date).
    pending: list[Leftover] = field(default_factory=list)
    # How many resources the stacks in `keep_stacks` hold, found and not counted as left.
    in_kept_stacks: int = 0

    @property
    def billable(self) -> list[Leftover]:
        return [item for item in self.leftovers if item.billable and not item.kept]

    @property
    def clean(self) -> bool:
        return all(item.kept for item in self.leftovers)

    @property
    def kept(self) -> list[Leftover]:
        return [item for item in self.leftovers if item.kept]

    @property
    def kept_usd_per_hour(self) -> float:
        return sum(item.usd_per_hour or 0.0 for item in self.kept)

    @property
    def usd_per_hour(self) -> float:
        """Estimated hourly cost of everything left (unknown prices count as 0; see `unpriced`)."""
        return sum(item.usd_per_hour or 0.0 for item in self.billable)

    @property
    def unpriced(self) -> list[Leftover]:
        return [item for item in self.billable if item.usd_per_hour is None]


def _unsupported(exc: Exception) -> bool:
    """The emulator answers some list calls with 'not implemented' or a server error."""
    if isinstance(exc, NotImplementedError):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return error.get("Code") in {"500", "NotImplemented", "InternalFailure"} or exc.response.get(
            "ResponseMetadata", {}
        ).get("HTTPStatusCode") in {500, 501}
    return False


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterable[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _key_pending_deletion(clients: ClientFactory, arn: str) -> str | None:
    """When the KMS key `arn` is pending deletion, its deletion date (it waits out its window after its stack is
    gone, and is not billed meanwhile); otherwise None."""
    if arn.split(":")[2] != "kms":
        return None
    metadata = clients("kms").describe_key(KeyId=arn)["KeyMetadata"]
    if metadata["KeyState"] != "PendingDeletion":
        return None
    when = metadata.get("DeletionDate")
    return f"deleted on {when:%Y-%m-%d}" if when is not None else "pending deletion"


@functools.cache
def stack_states() -> tuple[str, ...]:
    """Every CloudFormation stack status but DELETE_COMPLETE, from botocore's model of the API."""
    model = botocore.session.get_session().get_service_model("cloudformation")
    return tuple(state for state in model.shape_for("StackStatus").enum if state != "DELETE_COMPLETE")


def stack_fix(name: str, status: str) -> str:
    """The command that removes stack `name` left in `status`."""
    delete = f"aws cloudformation delete-stack --stack-name {name}"
    if status == "DELETE_FAILED":
        return (f"labctl teardown (removes what blocked the delete, then deletes again); or see "
                f"`aws cloudformation describe-stack-events --stack-name {name}`, remove the blocker, then {delete}")
    if status.endswith("ROLLBACK_FAILED") and status.startswith("UPDATE"):
        return f"aws cloudformation continue-update-rollback --stack-name {name}, then {delete}"
    if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        return f"wait until it settles (aws cloudformation describe-stacks --stack-name {name}), then audit again"
    # REVIEW_IN_PROGRESS (a change set never executed), ROLLBACK_COMPLETE (a failed creation) and the rest
    return delete


def _stack_name_of(stack_id: str) -> str:
    """`arn:aws:cloudformation:<region>:<account>:stack/<name>/<uuid>` -> name."""
    parts = stack_id.split(":stack/", 1)
    return parts[1].split("/", 1)[0] if len(parts) == 2 else stack_id


def _student_of(name: str, course: str, students: Iterable[str]) -> str:
    """The student whose `<course>-<student>` name part `name` carries (longest match), or ''."""
    found = [s for s in students if re.search(rf"{re.escape(course)}-{re.escape(s)}(?![A-Za-z0-9])", name)]
    return max(found, key=len, default="")


def _held_by(clients: ClientFactory, stacks: Iterable[str]) -> tuple[set[str], set[str]]:
    """Physical ids of what the live `stacks` hold, and their stack ids (exports are matched by those)."""
    cfn = clients("cloudformation")
    held: set[str] = set()
    stack_ids: set[str] = set()
    for name in stacks:
        try:
            found = cfn.describe_stacks(StackName=name)["Stacks"][0]
        except ClientError:
            continue  # not deployed: it holds nothing
        if found["StackStatus"] == "DELETE_COMPLETE":
            continue
        stack_ids.add(found["StackId"])
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
            for row in page["StackResourceSummaries"]:
                physical = row.get("PhysicalResourceId") or ""
                if physical:
                    held |= {physical, physical.rsplit("/", 1)[-1], physical.rsplit(":", 1)[-1]}
    return held, stack_ids


def _is_held(item: Leftover, held: set[str]) -> bool:
    """Whether `item` is (or belongs to) a resource in `held`: by id, ARN, name, or its parent's name."""
    name = item.name
    candidates = {name, name.rsplit("/", 1)[-1], name.rsplit(":", 1)[-1], name.split("/")[0]}
    if item.kind == "log stream":  # '<group>:<notebook>/<source>' belongs to the notebook
        candidates.add(name.split(":", 1)[-1].split("/")[0])
    return bool(candidates & held)


def audit_course(
    clients: ClientFactory, course: str, iam_path: str, *, known: Iterable[tuple[str, str]] = (),
    keep_stacks: Iterable[str] = (), students: Iterable[str] | None = None,
) -> AuditReport:
    """Everything of `course` still present. `known` adds (kind, name) pairs seen at deploy time to re-check
    where the service cannot list (e.g. lifecycle configs in the emulator).

    A partial destroy passes `keep_stacks` (the course's stacks meant to stay: the class stacks and the other
    students'), so what they hold is not counted, and `students` (those destroyed), so only what carries their
    name or tag counts: `destroy --student` is clean when that student's resources are gone.
    """
    report = AuditReport()
    prefix = f"{course}-"
    keep = set(keep_stacks)
    held, kept_stack_ids = _held_by(clients, keep) if keep else (set(), set())

    def check(label: str, run: Callable[[], None]) -> None:
        try:
            run()
        except Exception as exc:  # noqa: BLE001 - an unlistable service is reported, never a crash
            if not _unsupported(exc):
                raise
            report.unchecked.append(f"{label}: the endpoint cannot list these")

    course_stack_ids: set[str] = set()

    def stacks() -> None:
        cfn = clients("cloudformation")
        found = {(s["StackId"], s["StackName"], s["StackStatus"])
                 for s in _pages(cfn, "list_stacks", "StackSummaries", StackStatusFilter=list(stack_states()))
                 if s["StackName"].startswith(prefix)}
        # Stacks named without the course prefix (a learner's own `LabSageMaker`) are found by the course tag.
        found |= {(s["StackId"], s["StackName"], s["StackStatus"]) for s in _pages(cfn, "describe_stacks", "Stacks")
                  if {"Key": TAG_COURSE, "Value": course} in s.get("Tags", [])}
        for stack_id, name, status in sorted(found, key=lambda row: row[1]):
            course_stack_ids.add(stack_id)
            if name in keep:
                continue
            report.leftovers.append(Leftover("cloudformation", "stack", name, False, status,
                                             fix=stack_fix(name, status)))

    def exports() -> None:
        """The course's exports that outlive their stack, or hold on to a stack whose delete failed: each blocks
        the next course's deploy of the same stack. A live stack's exports go with it."""
        live = {s["StackId"]: s["StackStatus"] for s in _pages(clients("cloudformation"), "describe_stacks", "Stacks")}
        for export in _pages(clients("cloudformation"), "list_exports", "Exports"):
            stack_id = export.get("ExportingStackId", "")
            stack = _stack_name_of(stack_id)
            if not (export["Name"].startswith(prefix) or stack.startswith(prefix) or stack_id in course_stack_ids):
                continue
            if stack_id in kept_stack_ids:
                report.in_kept_stacks += 1
                continue
            if stack_id in live:
                if live[stack_id] != "DELETE_FAILED":
                    continue  # goes with its stack, which is listed (or kept) on its own
                detail, fix = f"exported by stack {stack} (DELETE_FAILED)", f"delete its stack: {stack_fix(stack, 'DELETE')}"
            else:
                # Cannot happen in AWS; the emulator before labkit.emulator_cfn kept exports of failed deletes.
                detail, fix = f"its stack {stack} no longer exists", "restart the emulator (labctl local down; up)"
            report.leftovers.append(Leftover("cloudformation", "export", export["Name"], False, detail, fix=fix))

    def buckets() -> None:
        s3 = clients("s3")
        for bucket in s3.list_buckets().get("Buckets", []):
            if bucket["Name"].startswith(prefix):
                pages = list(s3.get_paginator("list_object_versions").paginate(Bucket=bucket["Name"]))
                versions = [v for page in pages for v in page.get("Versions", [])]
                has_data = bool(versions or any(page.get("DeleteMarkers") for page in pages))
                size = sum(version.get("Size", 0) for version in versions)
                detail = f"{len(versions)} object version(s), {size} bytes" if has_data else "empty"
                report.leftovers.append(Leftover("s3", "bucket", bucket["Name"], has_data, detail,
                                                 prices.storage_per_hour(prices.S3_STANDARD_GB_MONTH, size)))

    def notebooks() -> None:
        sm = clients("sagemaker")
        for nb in _pages(sm, "list_notebook_instances", "NotebookInstances", NameContains=course):
            name = nb["NotebookInstanceName"]
            if name.startswith(prefix):
                volume = sm.describe_notebook_instance(NotebookInstanceName=name).get("VolumeSizeInGB", 5)
                status, kind = nb["NotebookInstanceStatus"], nb["InstanceType"]
                # Stopped notebooks still bill for their ML storage volume.
                report.leftovers.append(Leftover("sagemaker", "notebook", name, True, f"{status}, {kind}, {volume} GB",
                                                 prices.notebook_per_hour(kind, status, volume)))

    def lifecycle_configs() -> None:
        sm = clients("sagemaker")
        for lc in _pages(sm, "list_notebook_instance_lifecycle_configs", "NotebookInstanceLifecycleConfigs",
                         NameContains=course):
            if lc["NotebookInstanceLifecycleConfigName"].startswith(prefix):
                report.leftovers.append(
                    Leftover("sagemaker", "lifecycle config", lc["NotebookInstanceLifecycleConfigName"], False)
                )

    def iam_principals() -> None:
        iam = clients("iam")
        for role in _pages(iam, "list_roles", "Roles", PathPrefix=iam_path):
            report.leftovers.append(Leftover("iam", "role", role["RoleName"], False, role["Path"]))
        for user in _pages(iam, "list_users", "Users", PathPrefix=iam_path):
            report.leftovers.append(Leftover("iam", "user", user["UserName"], False, user["Path"]))
            # A key outlives the course if its user does: it is the one leftover that can still act.
            for key in _pages(iam, "list_access_keys", "AccessKeyMetadata", UserName=user["UserName"]):
                report.leftovers.append(
                    Leftover("iam", "access key", f"{user['UserName']}/{key['AccessKeyId']}", False, key["Status"])
                )
        for group in _pages(iam, "list_groups", "Groups", PathPrefix=iam_path):
            report.leftovers.append(Leftover("iam", "group", group["GroupName"], False, group["Path"]))

    def repositories() -> None:
        ecr = clients("ecr")
        for repo in _pages(ecr, "describe_repositories", "repositories"):
            name = repo["repositoryName"]
            if name.startswith(prefix):
                images = list(_pages(ecr, "describe_images", "imageDetails", repositoryName=name))
                size = sum(image.get("imageSizeInBytes", 0) for image in images)
                # Image storage bills per GB-month; an empty repository costs nothing.
                report.leftovers.append(Leftover(
                    "ecr", "repository", name, bool(images), f"{len(images)} image(s), {size} bytes" if images
                    else "empty", prices.storage_per_hour(prices.ECR_GB_MONTH, size)))

    def log_streams() -> None:
        logs = clients("logs")
        try:
            streams = list(_pages(logs, "describe_log_streams", "logStreams", logGroupName=NOTEBOOK_LOG_GROUP,
                                  logStreamNamePrefix=prefix))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return
            raise
        for stream in streams:
            stored = stream.get("storedBytes", 0)
            report.leftovers.append(Leftover("logs", "log stream", f"{NOTEBOOK_LOG_GROUP}:{stream['logStreamName']}",
                                             True, f"{stored} bytes",
                                             prices.storage_per_hour(prices.LOGS_GB_MONTH, stored)))

    def ec2_resources() -> None:
        ec2 = clients("ec2")
        tagged_course = [{"Name": f"tag:{TAG_COURSE}", "Values": [course]}]
        for reservation in _pages(ec2, "describe_instances", "Reservations", Filters=tagged_course):
            for instance in reservation["Instances"]:
                state, kind = instance["State"]["Name"], instance["InstanceType"]
                if state != "terminated":
                    # A stopped instance still bills for its EBS volumes (listed on their own below).
                    student = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}.get(TAG_STUDENT, "")
                    report.leftovers.append(Leftover("ec2", "instance", instance["InstanceId"], True,
                                                     f"{state}, {kind}", prices.instance_per_hour(kind, state),
                                                     student=student))
        for volume in _pages(ec2, "describe_volumes", "Volumes", Filters=tagged_course):
            report.leftovers.append(Leftover("ec2", "volume", volume["VolumeId"], True, f"{volume['Size']} GB",
                                             prices.storage_per_hour(prices.EBS_GP3_GB_MONTH, size_gb=volume["Size"])))
        for snapshot in _pages(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"], Filters=tagged_course):
            size = snapshot.get("VolumeSize", 0)
            tags = {tag["Key"]: tag["Value"] for tag in snapshot.get("Tags", [])}
            kept = PRESERVED_FROM in tags  # lab_scripts.preserve: a student's GPU home, deleted only on request
            detail = (f"of {size} GB, kept on purpose: {tags.get(TAG_STUDENT, '?')}'s GPU home from "
                      f"{tags[PRESERVED_FROM]}" if kept else f"of {size} GB")
            report.leftovers.append(Leftover("ec2", "snapshot", snapshot["SnapshotId"], True, detail,
                                             prices.storage_per_hour(prices.SNAPSHOT_GB_MONTH, size_gb=size), kept))
        for vpc in ec2.describe_vpcs(Filters=tagged_course)["Vpcs"]:
            report.leftovers.append(Leftover("ec2", "vpc", vpc["VpcId"], False))

    def functions() -> None:
        for fn in _pages(clients("lambda"), "list_functions", "Functions"):
            if fn["FunctionName"].startswith(prefix):
                report.leftovers.append(Leftover("lambda", "function", fn["FunctionName"], False, "bills per invoke"))

    def queues() -> None:
        for url in _pages(clients("sqs"), "list_queues", "QueueUrls", QueueNamePrefix=prefix):
            report.leftovers.append(Leftover("sqs", "queue", url.rsplit("/", 1)[-1], False, url))

    def function_log_groups() -> None:
        # Lambda's default group names, which is also what the LabRekognition stack names its own group.
        logs = clients("logs")
        for group in _pages(logs, "describe_log_groups", "logGroups",
                            logGroupNamePrefix=f"{LAMBDA_LOG_GROUP_PREFIX}{prefix}"):
            name = group["logGroupName"]
            # storedBytes lags by hours (and is always 0 in the emulator); any stream means stored, billed logs.
            holds_logs = bool(logs.describe_log_streams(logGroupName=name, limit=1)["logStreams"])
            stored = group.get("storedBytes", 0)
            report.leftovers.append(Leftover(
                "logs", "log group", name, holds_logs, f"holds log streams, {stored} bytes" if holds_logs else "empty",
                prices.storage_per_hour(prices.LOGS_GB_MONTH, stored)))

    def guard_resources() -> None:
        """LabGuard's report topic and schedule (free while idle), and the class budget."""
        for topic in _pages(clients("sns"), "list_topics", "Topics"):
            name = topic["TopicArn"].rsplit(":", 1)[-1]
            if name.startswith(prefix):
                report.leftovers.append(Leftover("sns", "topic", name, False, topic["TopicArn"]))
        for rule in clients("events").list_rules(NamePrefix=prefix).get("Rules", []):
            report.leftovers.append(Leftover("events", "rule", rule["Name"], False, rule.get("State", "")))

    def course_budgets() -> None:
        account = clients("sts").get_caller_identity()["Account"]
        try:
            found = list(_pages(clients("budgets"), "describe_budgets", "Budgets", AccountId=account))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NotFoundException":  # AWS's answer for "no budgets at all"
                return
            raise
        for budget in found:
            if budget["BudgetName"].startswith(prefix):
                report.leftovers.append(Leftover("budgets", "budget", budget["BudgetName"], False))

    def tagged() -> None:
        """Anything else carrying the course tag; EC2 is checked above by state, which tagging cannot see."""
        seen = {item.name for item in report.leftovers}
        for resource in _pages(clients("resourcegroupstaggingapi"), "get_resources", "ResourceTagMappingList",
                               TagFilters=[{"Key": TAG_COURSE, "Values": [course]}]):
            arn = resource["ResourceARN"]
            if arn.split(":")[2] == "ec2":
                continue
            pending = _key_pending_deletion(clients, arn)
            if pending:
                report.pending.append(Leftover("kms", "key", arn, False, pending))
                continue
            # Stack ARNs end in an id after the name: match a whole path segment as well as the end.
            if not any(name and (arn.endswith(name) or f"/{name}/" in arn) for name in seen):
                student = {t["Key"]: t["Value"] for t in resource.get("Tags", [])}.get(TAG_STUDENT, "")
                report.leftovers.append(Leftover("tagging", "tagged resource", arn, True, "found by course tag",
                                                 student=student))

    def known_names() -> None:
        """Re-check by name what was seen at deploy, where the service could not list it."""
        sm = clients("sagemaker")
        listed = {item.name for item in report.leftovers}
        names = [name for kind, name in known if kind == "lifecycle config" and name not in listed]
        for name in names:
            try:
                sm.describe_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name)
            except ClientError:
                continue
            report.leftovers.append(Leftover("sagemaker", "lifecycle config", name, False, "seen at deploy"))
        gap = "SageMaker lifecycle configs: the endpoint cannot list these"
        if names and gap in report.unchecked:
            report.unchecked[report.unchecked.index(gap)] = f"{gap}; re-checked the {len(names)} seen at deploy by name"

    check("CloudFormation stacks", stacks)
    check("CloudFormation exports", exports)
    check("S3 buckets", buckets)
    check("SageMaker notebooks", notebooks)
    check("SageMaker lifecycle configs", lifecycle_configs)
    check("IAM roles, users, access keys and groups", iam_principals)
    check("ECR repositories", repositories)
    check("notebook log streams", log_streams)
    check("EC2 instances, volumes, snapshots, VPCs", ec2_resources)
    check("Lambda functions", functions)
    check("SQS queues", queues)
    check("Lambda log groups", function_log_groups)
    check("SNS topics and EventBridge rules", guard_resources)
    check("AWS Budgets", course_budgets)
    check("tagged resources", tagged)
    check("resources seen at deploy", known_names)
    if keep:
        before = len(report.leftovers)
        report.leftovers = [item for item in report.leftovers if not _is_held(item, held)]
        report.in_kept_stacks += before - len(report.leftovers)
    if students is not None:
        chosen = set(students)
        named = [replace(item, student=item.student or _student_of(item.name, course, chosen))
                 for item in report.leftovers]
        report.leftovers = [item for item in named if item.student in chosen]
    return report
