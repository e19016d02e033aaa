"""Deploy and destroy lab stacks against a target (the embedded emulator or a real account).

Destroy is ordered so nothing is lost and nothing is left: pause the guard, stop notebooks, archive and
empty buckets (also those the guard kept when it deleted their stack), delete the stacks, remove
service-created logs, then audit.
"""

from __future__ import annotations

import functools
import json
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from lab_scripts import access_keys, buckets, class_repository, notebook
from lab_scripts.audit import NOTEBOOK_LOG_GROUP, AuditReport, audit_course
from lab_scripts.inventory import Found, live_stack_names, physical_ids_by_student, stack_inventory
from lab_scripts.network_cleanup import clean_vpc
from lab_scripts.organization import account_clients, stack_instance_states
from labkit.cdk import ASSEMBLY, CdkError, run_cdk
from course.config import LabConfig
from labkit.emulator import EMULATOR_ACCOUNT, Endpoint
from course.layout import LABS, PER_STUDENT_LABS, StackUnit
from course.naming import PLACEHOLDER_STUDENT, TAG_COURSE, CourseNames

Echo = Callable[[str], None]
ClientFactory = Callable[[str], Any]


@dataclass(frozen=True)
class Target:
    """Where labkit acts: `clients` for boto3 calls, `env` for the CDK CLI child process.

    The targets below hand out one client per service and reuse it: creating a client costs milliseconds, and
    a 30-student deploy and destroy would otherwise create about 350 of them (README, "Performance").
    """

    label: str
    clients: ClientFactory
    env: dict[str, str]
    emulator: bool
    # The emulator changes state instantly; AWS needs minutes, so poll patiently there.
    wait_delay: int = 30


def emulator_target(endpoint: Endpoint) -> Target:
    session = endpoint.session()
    # One client per service: jobs ask for clients freely, and each new botocore client costs about 30 ms.
    return Target(f"embedded emulator at {endpoint.url}", functools.cache(session.client), endpoint.env(), True,
                  wait_delay=1)


def aws_target(region: str) -> Target:
    session = boto3.Session(region_name=region)
    return Target(f"AWS ({region})", functools.cache(session.client), {"AWS_REGION": region}, False)


@dataclass
class DestroyResult:
    archived: list[buckets.ArchiveResult] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    # Buckets and users an earlier guard run kept when it deleted their stack, removed here after archiving.
    retained: list[str] = field(default_factory=list)
    # (kind, name) of resources the audit must re-check by name, where a service cannot list them.
    known: list[tuple[str, str]] = field(default_factory=list)
    # Account-per-student mode: each student account's client factory, so the audit covers those accounts too.
    student_accounts: dict[str, ClientFactory] = field(default_factory=dict)
    audit: AuditReport = field(default_factory=AuditReport)


@dataclass(frozen=True)
class _Drain:
    target: Target
    archive_dir: Path | None
    echo: Echo
    result: DestroyResult
    config: LabConfig | None = None


def _stop_notebook(ctx: _Drain, arn: str) -> None:
    # Stopped first, so nothing writes to the bucket after it is archived.
    name = arn.rsplit("/", 1)[-1]
    state = notebook.stop(ctx.target.clients("sagemaker"), name, delay=ctx.target.wait_delay)
    ctx.result.stopped.append(name)
    ctx.echo(f"{name}: {state.status}")


def _archive_bucket(ctx: _Drain, bucket: str) -> None:
    archived = buckets.archive_and_empty(ctx.target.clients("s3"), bucket, ctx.archive_dir)
    ctx.result.archived.append(archived)
    where = f" -> {archived.manifest.parent}" if archived.manifest else ""
    ctx.echo(f"s3://{bucket}: archived {archived.files} files ({archived.bytes} bytes){where}, emptied")


def _report_failed_events(ctx: _Drain, queue_url: str) -> None:
    """A dead-letter queue is deleted with its stack; say how many failed events go with it."""
    attributes = ctx.target.clients("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    waiting = int(attributes.get("ApproximateNumberOfMessages", 0))
    if waiting:
        ctx.echo(f"{queue_url.rsplit('/', 1)[-1]}: {waiting} failed events are deleted with the queue")


def _remember_lifecycle_config(ctx: _Drain, arn: str) -> None:
    ctx.result.known.append(("lifecycle config", arn.rsplit("/", 1)[-1]))


def _remember_vpc(ctx: _Drain, vpc_id: str) -> None:
    ctx.result.known.append(("vpc", vpc_id))
def _delete_access_keys(ctx: _Drain, user: str) -> None:
    # labctl issues keys outside CloudFormation, and IAM refuses to delete a user that still has one.
    try:
        deleted = access_keys.delete(ctx.target.clients("iam"), user)
    except access_keys.AccessKeyError:
        return  # the user is already gone, and its keys with it
    if deleted:
        ctx.echo(f"{user}: deleted {len(deleted)} access key(s) "
                 f"({', '.join(access_keys.masked(key) for key in deleted)})")


def _empty_repository(ctx: _Drain, name: str) -> None:
    deleted = class_repository.empty_repository(ctx.target.clients("ecr"), name)
    ctx.echo(f"ECR {name}: deleted {deleted} image(s)")


def _drain_student_accounts(ctx: _Drain, stack_set_id: str) -> None:
    """Account-per-student mode: in every student's own account, stop the notebook and archive the bucket, before
    CloudFormation deletes the stack set and with it each account's stack (and bucket)."""
    config = ctx.config
    assert config is not None, "destroy passes the course to the drain"
    name = stack_set_id.split(":", 1)[0]  # a StackSet's physical id is '<name>:<uuid>'
    accounts = stack_instance_states(ctx.target.clients("cloudformation"), name)
    ctx.echo(f"{name}: {len(accounts)} student accounts to archive before the stack set is deleted")
    for account in sorted(accounts):
        clients = account_clients(ctx.target.clients("sts"), account, region=config.region,
                                  endpoint_url=ctx.target.env.get("AWS_ENDPOINT_URL"))
        ctx.result.student_accounts[account] = clients
        sm = clients("sagemaker")
        for page in sm.get_paginator("list_notebook_instances").paginate(NameContains=config.course_id):
            for found in page["NotebookInstances"]:
                state = notebook.stop(sm, found["NotebookInstanceName"], delay=ctx.target.wait_delay)
                ctx.echo(f"account {account}: notebook {state.name}: {state.status}")
        bucket = CourseNames(config.course_id, account, config.region).student(PLACEHOLDER_STUDENT).bucket
        if bucket in {b["Name"] for b in clients("s3").list_buckets().get("Buckets", [])}:
            archived = buckets.archive_and_empty(clients("s3"), bucket, ctx.archive_dir)
            ctx.result.archived.append(archived)
            ctx.echo(f"account {account}: s3://{bucket}: archived {archived.files} files, emptied")


def _pause_guard(ctx: _Drain, rule: str) -> None:
    # The guard must not delete stacks or stop machines while the teardown archives and deletes them.
    ctx.target.clients("events").disable_rule(Name=rule)
    ctx.echo(f"{rule}: disabled, the guard does not run during the teardown")


# What must happen to each resource type, in this order, before CloudFormation may delete it: nothing of the
# students' is lost, and nothing blocks the delete (CloudFormation cannot delete a non-empty bucket).
DRAIN: dict[str, Callable[[_Drain, str], None]] = {
    "AWS::Events::Rule": _pause_guard,
    "AWS::SageMaker::NotebookInstance": _stop_notebook,
    "AWS::S3::Bucket": _archive_bucket,
    "AWS::SQS::Queue": _report_failed_events,
    "AWS::SageMaker::NotebookInstanceLifecycleConfig": _remember_lifecycle_config,
    "AWS::EC2::VPC": _remember_vpc,
    "AWS::IAM::User": _delete_access_keys,
    "AWS::ECR::Repository": _empty_repository,
    "AWS::CloudFormation::StackSet": _drain_student_accounts,
}


def _stack_resources(target: Target, stack_name: str) -> list[dict[str, Any]] | None:
    """The stack's resources, or None when the stack does not exist."""
    cfn = target.clients("cloudformation")
    try:
        status = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    if status == "DELETE_COMPLETE":
        return None
    pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name)
    return [row for page in pages for row in page["StackResourceSummaries"] if row.get("LogicalResourceId")]


def ensure_bootstrapped(target: Target, config: LabConfig, config_path: Path, echo: Echo) -> None:
    """The CDK bootstrap stack holds the template and asset bucket every deploy uses."""
    try:
        target.clients("ssm").get_parameter(Name="/cdk-bootstrap/hnb659fds/version")
        return
    except ClientError:
        pass
    if not target.emulator:
        raise RuntimeError(
            f"account {config.account}/{config.region} is not CDK-bootstrapped; run "
            f"`npx cdk bootstrap aws://{config.account}/{config.region}` once (see README)"
        )
    echo(f"bootstrapping CDK in the emulator (account {EMULATOR_ACCOUNT})")
    # `--app ""`: the environment is named, so the CLI need not synthesize the app first (5 of its 6 s, and a
    # stray cdk.out in the project root).
    run_cdk(["bootstrap", f"aws://{config.account}/{config.region}", "--app", ""], env=target.env,
            config_path=config_path, echo=lambda line: None)


# Stacks CloudFormation creates at once. Per-student stacks are independent, so a class deploys in about the time
# of one student's stacks; CloudFormation's own API rate limits are what bounds this.
CONCURRENCY = 8


def _finished_stack(line: str, construct_ids: set[str]) -> str | None:
    """The stack a CDK CLI line reports as deployed or destroyed (`✅  LabSageMaker-alice`), if any."""
    parts = line.strip().split()
    if len(parts) >= 2 and parts[0] == "\u2705" and parts[1] in construct_ids:
        return parts[1]
    return None


def _run_stacks(command: str, config: LabConfig, config_path: Path, target: Target, units: list[StackUnit],
                echo: Echo, progress: Callable[[str], None] | None, **run: Any) -> None:
    """`cdk deploy|destroy` of `units`, CONCURRENCY at a time; `progress` hears of each stack as it finishes."""
    ids = {unit.construct_id for unit in units}

    def relay(line: str) -> None:
        echo(line)
        finished = _finished_stack(line, ids)
        if finished and progress:
            progress(finished)

    args = [command, "--app", str(ASSEMBLY), *sorted(ids), "--concurrency", str(CONCURRENCY)]
    if command == "deploy":
        args += ["--progress", "events"]
        if target.emulator:
            # No one to ask in the emulator; and moto's change-set path drops stack outputs, direct keeps them.
            args += ["--require-approval", "never", "--method=direct"]
    else:
        args += ["--force"]
    run_cdk(args, env=target.env, config_path=config_path, echo=relay, **run)


def synthesize(target: Target, config_path: Path, echo: Echo) -> None:
    """The whole app into ASSEMBLY, with CDK's template validation and the cdk-nag gate."""
    echo("synthesizing the course's stacks")
    run_cdk(["synth", "--quiet", "-o", str(ASSEMBLY)], env=target.env, config_path=config_path, echo=echo)


def deploy(
    config: LabConfig, config_path: Path, target: Target, labs: list[str], echo: Echo = print,
    progress: Callable[[str], None] | None = None, *, synthesized: bool = False,
) -> dict[str, list[Found]]:
    """Deploy the stacks of `labs` (synthesizing first unless `synthesized`), and return what each lab really
    created (all its stacks)."""
    ensure_bootstrapped(target, config, config_path, echo)
    units = config.stacks(labs)
    if not synthesized:
        synthesize(target, config_path, echo)
    _run_stacks("deploy", config, config_path, target, units, echo, progress)
    inventory: dict[str, list[Found]] = {}
    for unit in units:
        template = json.loads((ASSEMBLY / f"{unit.construct_id}.template.json").read_text())
        inventory.setdefault(unit.lab, []).extend(stack_inventory(target.clients, unit.stack_name, template))
    return inventory


def _physical_of(resources: list[dict[str, Any]], kind: str) -> list[str]:
    return [row["PhysicalResourceId"] for row in resources if row["ResourceType"] == kind]


def _live_resources(target: Target, config: LabConfig) -> dict[str, list[dict[str, Any]]]:
    """Stack name -> resources, for each of the course's stacks that is deployed."""
    found = {unit.stack_name: _stack_resources(target, unit.stack_name) for unit in config.stacks()}
    return {name: resources for name, resources in found.items() if resources is not None}


def _owned(target: Target, config: LabConfig) -> set[str]:
    """Physical ids of everything the course's live stacks hold."""
    return {row.get("PhysicalResourceId", "") for resources in _live_resources(target, config).values()
            for row in resources}


def _course_tagged(tags: list[dict[str, str]], config: LabConfig) -> bool:
    return {"Key": TAG_COURSE, "Value": config.course_id} in tags


def retained_buckets(target: Target, config: LabConfig) -> list[str]:
    """Course buckets no live stack holds: kept (with student work) when the guard deleted their stack."""
    s3 = target.clients("s3")
    names = {config.names.student(student).bucket for student in config.students} | {config.names.rekognition.bucket}
    existing = names & {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    kept = []
    for name in sorted(existing - _owned(target, config)):
        try:
            tags = s3.get_bucket_tagging(Bucket=name)["TagSet"]
        except ClientError:
            tags = []
        if _course_tagged(tags, config):  # never touch a bucket the course did not create
            kept.append(name)
    return kept


def retained_users(target: Target, config: LabConfig) -> list[str]:
    """Course users (under its IAM path, course-tagged) that no live stack holds."""
    iam = target.clients("iam")
    pages = iam.get_paginator("list_users").paginate(PathPrefix=config.names.iam_path)
    owned = _owned(target, config)
    return [user["UserName"] for page in pages for user in page["Users"] if user["UserName"] not in owned
            and _course_tagged(iam.list_user_tags(UserName=user["UserName"])["Tags"], config)]


def _remove_retained(ctx: _Drain, config: LabConfig) -> None:
    """Archive and delete what the guard kept, so teardown ends with nothing left and nothing lost."""
    s3, iam = ctx.target.clients("s3"), ctx.target.clients("iam")
    for bucket in retained_buckets(ctx.target, config):
        ctx.echo(f"s3://{bucket}: kept when the guard deleted its stack")
        _archive_bucket(ctx, bucket)
        s3.delete_bucket(Bucket=bucket)
        ctx.result.retained.append(bucket)
    for user in retained_users(ctx.target, config):
        _delete_access_keys(ctx, user)
        for group in iam.list_groups_for_user(UserName=user)["Groups"]:
            iam.remove_user_from_group(GroupName=group["GroupName"], UserName=user)
        iam.delete_user(UserName=user)
        ctx.echo(f"IAM user {user}: kept when the guard deleted its stack; deleted")
        ctx.result.retained.append(user)


def teardown_plan(target: Target, config: LabConfig, archive_dir: Path | None) -> list[str]:
    """What `labctl teardown` would do, read from what is deployed now; changes nothing."""
    plan = [f"target: {target.label}"]
    for unit in stacks_to_destroy(target, config):
        name = unit.stack_name
        resources = _stack_resources(target, name)
        if resources is None:
            plan.append(f"{name}: not deployed")
            continue
        counts = {kind: len(_physical_of(resources, kind)) for kind in ("AWS::SageMaker::NotebookInstance",
                  "AWS::S3::Bucket", "AWS::EC2::Instance", "AWS::IAM::User") if _physical_of(resources, kind)}
        held = ", ".join(f"{count} {kind.rsplit('::', 1)[-1]}" for kind, count in counts.items())
        plan.append(f"{name}: delete{f' ({held})' if held else ''}")
    if config.classroom.per_account:
        plan.append("each student's account (through OrganizationAccountAccessRole): stop the notebook, archive and "
                    "empty the bucket, before the stack set deletes the account's labs; audit every account after")
    kept = retained_buckets(target, config) + retained_users(target, config)
    if kept:
        plan.append(f"kept by the guard, no stack left: {', '.join(kept)}: archive (buckets) and delete")
    plan += [
        "pause the guard; stop every notebook (work on notebook volumes is deleted with them: keep it in S3)",
        f"archive every lab bucket to {archive_dir}, verify it, empty it" if archive_dir
        else "empty every lab bucket WITHOUT archive (--no-archive)",
        "terminate GPU instances (their volumes go with them); delete access keys and class repository images",
        "delete the stacks and the notebooks' log streams, then audit for leftovers (exit 1 if any)",
    ]
    return plan


# Reads of many small things (a class's stacks, its students' machines) run this many at a time: against AWS
# each call waits 50-100 ms, so 200 students' stacks read one by one would take a minute.
PARALLEL_READS = 8


def parallel(function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """`function` over `items`, PARALLEL_READS at a time, results in order. boto3 clients are thread-safe; the
    caller creates the ones it needs first (creating them is not)."""
    with ThreadPoolExecutor(PARALLEL_READS) as pool:
        return list(pool.map(function, items))


def lab_physical_ids(target: Target, config: LabConfig, lab: str, kind: str) -> dict[str, str]:
    """Student -> physical id of their `kind` resource, across every stack of `lab`."""
    target.clients("cloudformation")
    found: dict[str, str] = {}
    for ids in parallel(lambda name: physical_ids_by_student(target.clients, name, kind), config.lab_stacks(lab)):
        found.update(ids)
    return found


def deployed_notebooks(target: Target, config: LabConfig) -> dict[str, str]:
    """Student -> deployed notebook name, from the deployed stacks (the emulator picks its own names)."""
    arns = lab_physical_ids(target, config, "LabSageMaker", "AWS::SageMaker::NotebookInstance")
    return {student: arn.rsplit("/", 1)[-1] for student, arn in arns.items()}


def deployed_instances(target: Target, config: LabConfig) -> dict[str, str]:
    """Student -> GPU instance id, from the deployed LabDLAMI stacks."""
    return lab_physical_ids(target, config, "LabDLAMI", "AWS::EC2::Instance")


def deployed_users(target: Target, config: LabConfig) -> dict[str, str]:
    """Student -> IAM user name, from the deployed LabContainers stack."""
    return lab_physical_ids(target, config, "LabContainers", "AWS::IAM::User")


def running_machines(target: Target, config: LabConfig) -> tuple[list[str], list[str]]:
    """(notebook names, instance ids) of the course now running: from the deployed stacks and the course tag."""
    sm, ec2 = target.clients("sagemaker"), target.clients("ec2")
    notebooks = set(deployed_notebooks(target, config).values())
    for page in sm.get_paginator("list_notebook_instances").paginate(NameContains=config.course_id):
        for found in page["NotebookInstances"]:
            if _course_tagged(sm.list_tags(ResourceArn=found["NotebookInstanceArn"])["Tags"], config):
                notebooks.add(found["NotebookInstanceName"])
    running_notebooks = sorted(name for name in notebooks
                               if notebook.status(sm, name).status in notebook.STOPPABLE | {"Stopping"})
    instances = set(deployed_instances(target, config).values())
    tagged = [{"Name": f"tag:{TAG_COURSE}", "Values": [config.course_id]}]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=tagged):
        instances |= {found["InstanceId"] for reservation in page["Reservations"] for found in reservation["Instances"]}
    running_instances = []
    if instances:
        pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=sorted(instances))
        running_instances = sorted(found["InstanceId"] for page in pages for reservation in page["Reservations"]
                                   for found in reservation["Instances"]
                                   if found["State"]["Name"] in {"pending", "running", "stopping"})
    return running_notebooks, running_instances


def dropped_out_stacks(target: Target, config: LabConfig, labs: Iterable[str] = LABS) -> list[StackUnit]:
    """Live, course-tagged stacks of students no longer in the course file (they left the class): the app no
    longer builds them, so `cdk destroy` cannot see them, but their work and machines are still there."""
    known = {unit.stack_name for unit in config.stacks()}
    cfn = target.clients("cloudformation")
    live = live_stack_names(cfn)
    dropped = []
    for lab in (lab for lab in labs if lab in PER_STUDENT_LABS and not config.classroom.per_account):
        prefix = f"{config.names.stack(lab)}-"
        for name in sorted(live):
            if name.startswith(prefix) and name not in known:
                tags = cfn.describe_stacks(StackName=name)["Stacks"][0].get("Tags", [])
                if _course_tagged(tags, config):
                    dropped.append(StackUnit(lab, name.removeprefix(prefix), name))
    return dropped


def stacks_to_destroy(target: Target, config: LabConfig, labs: Iterable[str] = LABS,
                      students: Sequence[str] | None = None) -> list[StackUnit]:
    """The stacks of `labs` (and of students who left the course file); with `students`, only theirs."""
    units = config.stacks(labs) + dropped_out_stacks(target, config, labs)
    return units if students is None else [unit for unit in units if unit.student in students]


def destroy(
    config: LabConfig,
    config_path: Path,
    target: Target,
    labs: list[str],
    *,
    archive_dir: Path | None,
    echo: Echo = print,
    progress: Callable[[str], None] | None = None,
    students: Sequence[str] | None = None,
) -> DestroyResult:
    """Archive, then delete the stacks of `labs`; with `students`, only those students' own stacks (also of
    students who have left the course file). The audit covers what was deleted; stacks that stay are not
    leftovers."""
    result = DestroyResult()
    ctx = _Drain(target, archive_dir, echo, result, config)
    deployed: dict[StackUnit, list[dict[str, Any]]] = {}
    for unit in stacks_to_destroy(target, config, labs, students):
        resources = _stack_resources(target, unit.stack_name)
        if resources is None:
            echo(f"{unit.stack_name}: not deployed")
        else:
            deployed[unit] = resources
    # Kind by kind across all stacks, so the guard is paused before anything else and every notebook is stopped
    # before any bucket is archived.
    for kind, drain in DRAIN.items():
        for resources in deployed.values():
            for physical_id in _physical_of(resources, kind):
                drain(ctx, physical_id)
    if students is None:
        _remove_retained(ctx, config)
    in_app = {unit.stack_name for unit in config.stacks()}
    # Stacks the app no longer builds go first, through CloudFormation itself: they are students' stacks, which
    # may import from class stacks deleted next.
    _delete_dropped([unit for unit in deployed if unit.stack_name not in in_app], target, echo, progress)
    app_units = [unit for unit in deployed if unit.stack_name in in_app]
    if app_units:
        _delete_stacks(config, config_path, target, app_units, result, echo, progress)
    _delete_notebook_logs(target, config, None if students is None else result.stopped)
    result.audit = audit_course(target.clients, config.course_id, config.names.iam_path, known=result.known)
    if students is not None or set(labs) != set(LABS):
        _keep_what_stays(target, config, result.audit)
    for account, clients in result.student_accounts.items():
        # What the stack set's deletion left in a student's account counts as left, as in the class account.
        own = audit_course(clients, config.course_id, config.names.iam_path)
        result.audit.leftovers += [replace(item, name=f"{item.name} (account {account})") for item in own.leftovers]
        result.audit.unchecked += [f"{note} (account {account})" for note in own.unchecked]
    return result


def _delete_dropped(units: list[StackUnit], target: Target, echo: Echo,
                    progress: Callable[[str], None] | None) -> None:
    if not units:
        return
    cfn = target.clients("cloudformation")
    for unit in units:
        echo(f"{unit.stack_name}: deleting ({unit.student} is no longer in the course file)")
        cfn.delete_stack(StackName=unit.stack_name)
    waiter = cfn.get_waiter("stack_delete_complete")
    for unit in units:
        waiter.wait(StackName=unit.stack_name, WaiterConfig={"Delay": max(1, target.wait_delay), "MaxAttempts": 120})
        echo(f"{unit.stack_name}: deleted")
        if progress:
            progress(unit.construct_id)


def _keep_what_stays(target: Target, config: LabConfig, audit: AuditReport) -> None:
    """A partial destroy: what the course's remaining stacks hold (and keys of their users, streams of their
    notebooks) is meant to stay, so only the rest counts as left."""
    live = _live_resources(target, config)
    owned = set(live)
    for resources in live.values():
        for row in resources:
            physical = row.get("PhysicalResourceId", "")
            owned |= {physical, physical.rsplit("/", 1)[-1], physical.rsplit(":", 1)[-1]}
    audit.leftovers = [item for item in audit.leftovers
                       if item.name not in owned and item.name.split("/")[0] not in owned]


def _delete_stacks(config: LabConfig, config_path: Path, target: Target, units: list[StackUnit],
                   result: DestroyResult, echo: Echo, progress: Callable[[str], None] | None) -> None:
    echo(f"deleting {len(units)} stacks: {', '.join(unit.stack_name for unit in units)}")
    # Synthesize once; a retry after a failed delete then costs no second synthesis. A delete reads only the
    # stack names from the assembly, so CDK's CloudFormation validation of the templates (about 3 s) is skipped.
    run_cdk(["synth", "--quiet", "-o", str(ASSEMBLY)], env={**target.env, "CDK_VALIDATION": "false"},
            config_path=config_path, allow_expired=True, echo=lambda line: None)
    # The CLI deletes dependants first: students' GPU stacks before the class network they import.
    try:
        _run_stacks("destroy", config, config_path, target, units, echo, progress, allow_expired=True)
    except CdkError as exc:
        vpcs = [name for kind, name in result.known if kind == "vpc"]
        if not vpcs:
            raise
        # DELETE_FAILED on a network: clear what blocks the VPCs, then delete the stacks again.
        echo(f"stack delete failed ({exc}); cleaning {len(vpcs)} VPCs directly and retrying")
        for vpc_id in vpcs:
            clean_vpc(target.clients("ec2"), vpc_id, echo=echo, wait_delay=target.wait_delay)
        # Stacks already gone are skipped by the CLI.
        _run_stacks("destroy", config, config_path, target, units, echo, progress, allow_expired=True)


def _delete_notebook_logs(target: Target, config: LabConfig, notebooks: list[str] | None = None) -> None:
    """SageMaker creates notebook log streams outside the stack; they bill for storage until deleted. Every
    stream of the course, or with `notebooks` only theirs (`<notebook>/<source>`)."""
    logs = target.clients("logs")
    prefixes = [f"{config.course_id}-"] if notebooks is None else [f"{name}/" for name in notebooks]
    try:
        streams = [stream["logStreamName"] for prefix in prefixes
                   for page in logs.get_paginator("describe_log_streams").paginate(
                       logGroupName=NOTEBOOK_LOG_GROUP, logStreamNamePrefix=prefix)
                   for stream in page["logStreams"]]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return
        raise
    for stream in streams:
        logs.delete_log_stream(logGroupName=NOTEBOOK_LOG_GROUP, logStreamName=stream)
