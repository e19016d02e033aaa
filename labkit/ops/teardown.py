"""`labctl destroy` and `labctl teardown`: nothing lost, nothing left, resumable.

Order (README, "Teardown"): stop every machine, cut the students' write access (keys deactivated), pause the
guard, archive and verify every bucket, empty only what the archive holds, delete keys and images, delete the
stacks (students' first), remove service-created logs, audit. Each step is recorded in a journal under
.labkit/journal/, so a run that was interrupted continues where it stopped, into the same archive folder.
"""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor, as_completed
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from course.config import LabConfig
from course.layout import LABS, StackUnit
from lab_scripts import access_keys, buckets, class_repository, instance, notebook, preserve, prices
from lab_scripts.audit import NOTEBOOK_LOG_GROUP, AuditReport, audit_course
from lab_scripts.network_cleanup import clean_vpc
from lab_scripts.retained import LeftBehind
from labkit import ROOT
from labkit.deployed import (STUCK, left_behind, live_resources, physical_of, retained_buckets, retained_users,
                             stack_resources, stacks_to_destroy, stuck_stacks)
from labkit.events import (BucketArchived, Info, KeysDeactivated, KeysDeleted, MachineStopped, PhaseFinished,
                           PhaseStarted, Sink, StackFinished, StackStarted, StepDone, Warning, ignore)
from labkit.ops.accounts import deployed_accounts, notebook_names
from labkit.ops.errors import OperationError
from labkit.ops.stacks import run_stacks, synthesize
from labkit.target import ClientFactory, Target

ARCHIVE_ROOT = ROOT / ".labkit" / "archive"
JOURNAL_ROOT = ROOT / ".labkit" / "journal"


def archive_dir_for(config: LabConfig) -> Path:
    return ARCHIVE_ROOT / f"{config.course_id}-{dt.datetime.now():%Y%m%d-%H%M%S}"


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
    # (account, VPC id) of the students' networks: the emulator's CloudFormation cannot delete a VPC there either.
    account_vpcs: list[tuple[str, str]] = field(default_factory=list)
    deleted_stacks: list[str] = field(default_factory=list)
    # GPU instances' root volumes kept as snapshots before their stacks were deleted.
    snapshots: list[preserve.SnapshotRecord] = field(default_factory=list)
    archive_dir: Path | None = None
    audit: AuditReport = field(default_factory=AuditReport)

    def archived_files(self) -> dict[str, str]:
        """bucket/key -> SHA-256 of every archived object (its latest version), from the archive manifests."""
        files: dict[str, str] = {}
        for item in self.archived:
            if item.manifest:
                for entry in json.loads(item.manifest.read_text())["objects"]:
                    if entry.get("latest", True) and not entry.get("delete_marker"):
                        files[f"{item.bucket}/{entry['key']}"] = entry["sha256"]
        return files


class Journal:
    """What a teardown has done, on disk, so a rerun after a crash continues rather than starts over."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {"done": []}
        if path is not None and path.exists():
            self.data = json.loads(path.read_text())

    @classmethod
    def for_course(cls, config: LabConfig, root: Path = JOURNAL_ROOT) -> "Journal":
        return cls(root / f"{config.course_id}-teardown.json")

    def record(self, step: str) -> None:
        if step not in self.data["done"]:
            self.data["done"].append(step)
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data, indent=2, default=str))
        temporary.replace(self.path)  # atomic: a kill -9 leaves the old journal or the new one, never half

    def finish(self) -> None:
        if self.path is not None and self.path.exists():
            self.path.unlink()


def unfinished_teardown(config: LabConfig, root: Path = JOURNAL_ROOT) -> dict[str, Any] | None:
    """The journal of a teardown that started and did not finish, for `labctl status`."""
    path = root / f"{config.course_id}-teardown.json"
    return json.loads(path.read_text()) if path.exists() else None


@dataclass(frozen=True)
class Drain:
    target: Target
    archive_dir: Path | None
    emit: Sink
    result: DestroyResult
    config: LabConfig | None = None
    journal: Journal = field(default_factory=lambda: Journal(None))


def _stop_notebook(ctx: Drain, arn: str) -> None:
    # Stopped first, so nothing writes to the bucket after it is archived.
    name = arn.rsplit("/", 1)[-1]
    state = notebook.stop(ctx.target.clients("sagemaker"), name, delay=ctx.target.wait_delay)
    ctx.result.stopped.append(name)
    ctx.emit(MachineStopped("notebook", name, state.status))


def _stop_instance(ctx: Drain, instance_id: str) -> None:
    # Stopped before the guard pauses: an interrupted teardown never leaves a GPU running with no guard.
    try:
        state = instance.stop(ctx.target.clients("ec2"), instance_id, delay=ctx.target.wait_delay)
    except instance.InstanceError:
        return  # already terminated
    ctx.emit(MachineStopped("instance", instance_id, state.state))


def _freeze_keys(ctx: Drain, user: str) -> None:
    """Cut a student's write access before their bucket is archived: what the archive holds is final."""
    try:
        changed = access_keys.deactivate(ctx.target.clients("iam"), user)
    except access_keys.AccessKeyError:
        return
    if changed:
        ctx.emit(KeysDeactivated(user, len(changed)))


def _pause_guard(ctx: Drain, rule: str) -> None:
    # The guard must not delete stacks or stop machines while the teardown archives and deletes them.
    ctx.target.clients("events").disable_rule(Name=rule)
    ctx.emit(Info(f"{rule}: disabled, the guard does not run during the teardown"))


def _request_stop_notebook(ctx: Drain, arn: str) -> None:
    try:
        notebook.stop(ctx.target.clients("sagemaker"), arn.rsplit("/", 1)[-1], wait=False)
    except notebook.NotebookError:
        pass  # the waiting pass below reports it


def _request_stop_instance(ctx: Drain, instance_id: str) -> None:
    try:
        instance.stop(ctx.target.clients("ec2"), instance_id, wait=False)
    except instance.InstanceError:
        pass


def archive_bucket(ctx: Drain, bucket: str) -> None:
    _record_archive(ctx, bucket, buckets.archive_and_empty(ctx.target.clients("s3"), bucket, ctx.archive_dir))


def _archive_buckets(ctx: Drain, names: list[str]) -> None:
    """ARCHIVE_WORKERS buckets at a time (each is a loop of S3 round trips, so a class's would add up); each
    is recorded as it finishes. Safe to repeat: a rerun archives into the interrupted run's folder, adding only
    what is new, and empties only what the verified archive holds."""
    s3 = ctx.target.clients("s3")
    with ThreadPoolExecutor(max_workers=ARCHIVE_WORKERS) as pool:
        running = {pool.submit(buckets.archive_and_empty, s3, name, ctx.archive_dir): name for name in names}
        for done in as_completed(running):
            _record_archive(ctx, running[done], done.result())
    order = {name: index for index, name in enumerate(names)}
    ctx.result.archived.sort(key=lambda archived: order.get(archived.bucket, -1))


def _record_archive(ctx: Drain, bucket: str, archived: buckets.ArchiveResult) -> None:
    ctx.result.archived.append(archived)
    ctx.journal.record(f"archive:{bucket}")
    ctx.emit(BucketArchived(bucket, archived.files, archived.bytes,
                            str(archived.manifest.parent) if archived.manifest else ""))
    if archived.late:
        ctx.emit(Warning(f"s3://{bucket}: {archived.late} versions were written during the archive (archived too)"))


def _report_failed_events(ctx: Drain, queue_url: str) -> None:
    """A dead-letter queue is deleted with its stack; say how many failed events go with it."""
    attributes = ctx.target.clients("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    waiting = int(attributes.get("ApproximateNumberOfMessages", 0))
    if waiting:
        ctx.emit(Warning(f"{queue_url.rsplit('/', 1)[-1]}: {waiting} failed events are deleted with the queue"))


def _remember_lifecycle_config(ctx: Drain, arn: str) -> None:
    ctx.result.known.append(("lifecycle config", arn.rsplit("/", 1)[-1]))


def _remember_vpc(ctx: Drain, vpc_id: str) -> None:
    ctx.result.known.append(("vpc", vpc_id))


def _delete_access_keys(ctx: Drain, user: str) -> None:
    # labctl issues keys outside CloudFormation, and IAM refuses to delete a user that still has one.
    try:
        deleted = access_keys.delete(ctx.target.clients("iam"), user)
    except access_keys.AccessKeyError:
        return  # the user is already gone, and its keys with it
    if deleted:
        ctx.emit(KeysDeleted(user, len(deleted)))


def _empty_repository(ctx: Drain, name: str) -> None:
    deleted = class_repository.empty_repository(ctx.target.clients("ecr"), name)
    ctx.emit(Info(f"ECR {name}: deleted {deleted} image(s)"))


def _drain_student_accounts(ctx: Drain, stack_set_id: str) -> None:
    """Account-per-student mode: in every student's own account, stop the notebook and GPU instance, freeze and
    archive the bucket, before CloudFormation deletes the stack set and with it each account's stack (and bucket).
    What to drain is read from the stack set's stack in that account."""
    config = ctx.config
    assert config is not None, "destroy passes the course to the drain"
    name = stack_set_id.split(":", 1)[0]  # a StackSet's physical id is '<name>:<uuid>'
    accounts = deployed_accounts(ctx.target, config)
    ctx.emit(Info(f"{name}: {len(accounts)} student accounts to archive before the stack set is deleted"))
    deployed = {account: found.resources() for account, found in accounts.items()}
    # Every machine in every account is asked to stop before the teardown waits for any, as in the class account.
    for account, found in accounts.items():
        there = replace(ctx, target=found.target)
        for kind, request in REQUEST_STOP.items():
            for physical_id in physical_of(deployed[account], kind):
                request(there, physical_id)
    frozen: list[tuple[str, Any, str]] = []  # (account, its S3 client, bucket)
    for account, found in accounts.items():
        ctx.result.student_accounts[account] = found.target.clients
        resources = deployed[account]
        sm, ec2 = found.target.clients("sagemaker"), found.target.clients("ec2")
        for name_ in notebook_names(resources):
            state = notebook.stop(sm, name_, delay=ctx.target.wait_delay)
            ctx.emit(MachineStopped("notebook", f"{state.name} (account {account})", state.status))
        for instance_id in physical_of(resources, "AWS::EC2::Instance"):
            stopped = instance.stop(ec2, instance_id, delay=ctx.target.wait_delay)
            ctx.emit(MachineStopped("instance", f"{instance_id} (account {account})", stopped.state))
        ctx.result.account_vpcs += [(account, vpc) for vpc in physical_of(resources, "AWS::EC2::VPC")]
        s3 = found.target.clients("s3")
        for bucket in physical_of(resources, "AWS::S3::Bucket"):
            _freeze_bucket(s3, bucket)
            ctx.emit(Info(f"account {account}: s3://{bucket}: new writes denied (bucket policy)"))
            frozen.append((account, s3, bucket))
    # Every account's bucket, frozen above, is archived ARCHIVE_WORKERS at a time, as in the class account.
    with ThreadPoolExecutor(max_workers=ARCHIVE_WORKERS) as pool:
        running = {pool.submit(buckets.archive_and_empty, s3, bucket, ctx.archive_dir): (account, bucket)
                   for account, s3, bucket in frozen}
        for done in as_completed(running):
            account, bucket = running[done]
            archived = done.result()
            ctx.result.archived.append(archived)
            ctx.emit(BucketArchived(f"{bucket} (account {account})", archived.files, archived.bytes,
                                    str(archived.manifest.parent) if archived.manifest else ""))
    order = {bucket: index for index, (_, _, bucket) in enumerate(frozen)}
    ctx.result.archived.sort(key=lambda archived: order.get(archived.bucket, -1))


def freeze_policy(bucket: str) -> dict[str, Any]:
    """A bucket policy that refuses every new write: in a student's own account the student signs in as an
    administrator, so no key of theirs can be deactivated; an explicit deny applies to them all the same. The
    teardown only reads and deletes, so it needs no exception; a delete after the freeze removes only what the
    archive already holds (every version is kept there)."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "LabkitTeardownFreeze", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{bucket}/*"}]}


def _freeze_bucket(s3: Any, bucket: str) -> None:
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(freeze_policy(bucket)))


# What must happen to each resource type, in this order, before CloudFormation may delete it: machines stop
# first (nothing writes, nothing runs unguarded), the students' keys are frozen, the guard pauses, then every
# bucket is archived, and only then is anything deleted (CloudFormation cannot delete a non-empty bucket).
DRAIN: dict[str, Callable[[Drain, str], None]] = {
    "AWS::SageMaker::NotebookInstance": _stop_notebook,
    "AWS::EC2::Instance": _stop_instance,
    "AWS::IAM::User": _freeze_keys,
    "AWS::Events::Rule": _pause_guard,
    "AWS::S3::Bucket": archive_bucket,
    "AWS::SQS::Queue": _report_failed_events,
    "AWS::SageMaker::NotebookInstanceLifecycleConfig": _remember_lifecycle_config,
    "AWS::EC2::VPC": _remember_vpc,
    "AWS::ECR::Repository": _empty_repository,
    "AWS::CloudFormation::StackSet": _drain_student_accounts,
}
# Asked of every machine before DRAIN waits for any: the machines stop together, not one waiter after another.
REQUEST_STOP: dict[str, Callable[[Drain, str], None]] = {
    "AWS::SageMaker::NotebookInstance": _request_stop_notebook,
    "AWS::EC2::Instance": _request_stop_instance,
}
# Buckets archived at once (S3 serves each bucket's requests independently).
ARCHIVE_WORKERS = 8
# After every bucket is archived: what deletes rather than freezes.
AFTER_ARCHIVE: dict[str, Callable[[Drain, str], None]] = {
    "AWS::IAM::User": _delete_access_keys,
}


def _preserve_homes(ctx: Drain, instances: dict[str, str]) -> None:
    """Each student's GPU volume as a tagged snapshot, complete before its stack (and volume) is deleted: home
    directories, conda environments and images outside the bucket survive. Deleted by `labctl preserved delete`."""
    if not instances or ctx.config is None or ctx.archive_dir is None:
        return
    records = preserve.preserve_homes(ctx.target.clients("ec2"), instances, course=ctx.config.course_id,
                                      delay=ctx.target.wait_delay)
    ctx.result.snapshots = records
    preserve.write_manifest(ctx.archive_dir, records)
    size = sum(record.size_gb for record in records)
    kept = "1 snapshot" if len(records) == 1 else f"{len(records)} snapshots"
    ctx.emit(Info(f"GPU homes of {', '.join(sorted(record.student for record in records))} kept as {kept} "
                  f"({size} GB, at most {sum(r.usd_per_month for r in records):.2f} USD/month until `labctl preserved "
                  "delete`; listed in the archive's preserved-snapshots.json)"))
    ctx.journal.record("preserved")


def remove_stuck(ctx: Drain, config: LabConfig, found: LeftBehind | None = None) -> list[str]:
    """The course's stacks in a state no deploy can go on from (REVIEW_IN_PROGRESS after an interrupted deploy,
    ROLLBACK_COMPLETE, DELETE_FAILED ...): archive any bucket they still hold, then delete them."""
    cfn = ctx.target.clients("cloudformation")
    stuck = stuck_stacks(ctx.target, config, found)
    for name, status in stuck.items():
        ctx.emit(StackStarted(name, "destroy"))
        ctx.emit(Info(f"{name}: {status} ({STUCK[status]})"))
        for bucket in physical_of(stack_resources(ctx.target, name) or [], "AWS::S3::Bucket"):
            try:
                archive_bucket(ctx, bucket)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "NoSuchBucket":  # never created: nothing to archive
                    raise
        cfn.delete_stack(StackName=name)
        cfn.get_waiter("stack_delete_complete").wait(
            StackName=name, WaiterConfig={"Delay": max(1, ctx.target.wait_delay), "MaxAttempts": 120})
        ctx.emit(StackFinished(name, "destroy", 0.0))
    return list(stuck)


def _remove_retained(ctx: Drain, config: LabConfig, found: LeftBehind | None = None) -> None:
    """Archive and delete what the guard (or a plain `cdk destroy`) kept, so nothing is left and nothing lost."""
    s3, iam = ctx.target.clients("s3"), ctx.target.clients("iam")
    users = retained_users(ctx.target, config)  # frozen before the buckets are archived, deleted after
    for user in users:
        _freeze_keys(ctx, user)
    for bucket in retained_buckets(ctx.target, config, found):
        ctx.emit(Info(f"s3://{bucket}: kept when its stack was deleted"))
        archive_bucket(ctx, bucket)
        s3.delete_bucket(Bucket=bucket)
        ctx.result.retained.append(bucket)
    for user in users:
        _delete_access_keys(ctx, user)
        for group in iam.list_groups_for_user(UserName=user)["Groups"]:
            iam.remove_user_from_group(GroupName=group["GroupName"], UserName=user)
        iam.delete_user(UserName=user)
        ctx.emit(Info(f"IAM user {user}: kept when its stack was deleted; deleted"))
        ctx.result.retained.append(user)


@dataclass(frozen=True)
class PlanRow:
    """One stack of a destroy or teardown plan, with what it holds."""

    student: str
    stack: str
    holds: str


@dataclass
class TeardownPlan:
    target: str
    stacks: list[PlanRow]
    steps: list[str]
    kept: list[str]


# What the plan counts in each deployed stack: the table shows these, and the steps depend on them and the rest.
SHOWN_KINDS = ("AWS::SageMaker::NotebookInstance", "AWS::S3::Bucket", "AWS::EC2::Instance", "AWS::IAM::User")
PLANNED_KINDS = SHOWN_KINDS + ("AWS::ECR::Repository", "AWS::Events::Rule", "AWS::CloudFormation::StackSet")


def teardown_plan(target: Target, config: LabConfig, archive_dir: Path | None, labs: Sequence[str] = LABS,
                  students: Sequence[str] | None = None) -> TeardownPlan:
    """What `labctl teardown` (or `destroy`, `reset`) would do, read from what is deployed now; changes nothing.
    Each step is listed only when the stacks hold what it acts on: a student's reset pauses no guard."""
    rows = []
    found: Counter[str] = Counter()
    homes = 0  # students' GPU instances: with an archive, each volume is kept as a snapshot (_preserve_homes)
    for unit in stacks_to_destroy(target, config, labs, students):
        resources = stack_resources(target, unit.stack_name)
        if resources is None:
            rows.append(PlanRow(unit.student or "(class)", unit.stack_name, "not deployed"))
            continue
        counts = {kind: held for kind in PLANNED_KINDS if (held := len(physical_of(resources, kind)))}
        found.update(counts)
        homes += counts.get("AWS::EC2::Instance", 0) if unit.student else 0
        shown = ", ".join(f"{count} {kind.rsplit('::', 1)[-1]}" for kind, count in counts.items()
                          if kind in SHOWN_KINDS)
        rows.append(PlanRow(unit.student or "(class)", unit.stack_name, f"delete ({shown})" if shown else "delete"))
    kept = [] if students is not None else retained_buckets(target, config) + retained_users(target, config)
    machines = found["AWS::SageMaker::NotebookInstance"] or found["AWS::EC2::Instance"]
    users = found["AWS::IAM::User"]
    steps = [step for step in (
        ", ".join((["stop every notebook and GPU instance"] if machines else []) +
                  (["deactivate the students' access keys"] if users else [])) +
        (" (nothing writes after this)" if machines or users else ""),
        "pause the guard" if found["AWS::Events::Rule"] else "",
        "each student's account (through OrganizationAccountAccessRole): stop the notebook and GPU instance, freeze, "
        "archive and empty the bucket, before the stack set deletes the account's labs; audit every account"
        if found["AWS::CloudFormation::StackSet"] else "",
        f"archive every version of every object of each lab bucket to {archive_dir}, verify it, then empty only "
        "what the archive holds" if archive_dir else "empty every lab bucket WITHOUT archive (--no-archive)",
        f"kept from deleted stacks: {', '.join(kept)}: archive (buckets) and delete" if kept else "",
        _machines_step(config, found, homes if archive_dir else 0),
        "delete the stacks (students' first) and the notebooks' log streams, then audit for leftovers (exit 1 if any)",
    ) if step]
    return TeardownPlan(target.label, rows, steps, kept)


def _machines_step(config: LabConfig, found: Counter[str], homes: int) -> str:
    """The plan's step for keys, images and GPU instances; the snapshots it keeps are billed, so the plan says so."""
    deletes = " and ".join((["access keys"] if found["AWS::IAM::User"] else []) +
                           (["class repository images"] if found["AWS::ECR::Repository"] else []))
    parts = [f"delete {deletes}"] if deletes else []
    if homes:
        size = homes * config.dlami.volume_gb
        parts.append(f"keep each student's GPU volume as a snapshot ({homes}, at most {size} GB: "
                     f"{size * prices.SNAPSHOT_GB_MONTH:.2f} USD/month until `labctl preserved delete`), then "
                     "terminate the GPU instances")
    elif found["AWS::EC2::Instance"]:
        parts.append("terminate GPU instances (their volumes go with them)")
    return "; ".join(parts)


def destroy(
    config: LabConfig,
    config_path: Path,
    target: Target,
    labs: Sequence[str],
    *,
    archive_dir: Path | None,
    emit: Sink = ignore,
    students: Sequence[str] | None = None,
    journal: Journal | None = None,
) -> DestroyResult:
    """Archive, then delete the stacks of `labs`; with `students`, only those students' own stacks (also of
    students who have left the course file). The audit covers what was deleted; stacks that stay are not
    leftovers."""
    journal = journal or Journal(None)
    if journal.data.get("archive_dir"):
        archive_dir = Path(journal.data["archive_dir"])  # a rerun archives into the interrupted run's folder
    else:
        journal.data["archive_dir"] = str(archive_dir) if archive_dir else ""
    result = DestroyResult(archive_dir=archive_dir)
    ctx = Drain(target, archive_dir, emit, result, config, journal)
    deployed: dict[StackUnit, list[dict[str, Any]]] = {}
    for unit in stacks_to_destroy(target, config, labs, students):
        resources = stack_resources(target, unit.stack_name)
        if resources is not None:
            deployed[unit] = resources
    emit(PhaseStarted("archiving", sum(len(physical_of(r, "AWS::S3::Bucket")) for r in deployed.values())))
    # Kind by kind across all stacks: every machine stops and every key is frozen before any bucket is archived.
    for steps in (REQUEST_STOP, DRAIN, AFTER_ARCHIVE):
        for kind, drain in steps.items():
            found = [physical_id for resources in deployed.values() for physical_id in physical_of(resources, kind)]
            if drain is archive_bucket and len(found) > 1:
                _archive_buckets(ctx, found)
                continue
            for physical_id in found:
                drain(ctx, physical_id)
    if students is None:
        found = left_behind(target, config)  # one read for the kept buckets and the stuck stacks
        _remove_retained(ctx, config, found)
        remove_stuck(ctx, config, found)
    if archive_dir is not None:
        _preserve_homes(ctx, {physical_id: unit.student for unit, resources in deployed.items() if unit.student
                              for physical_id in physical_of(resources, "AWS::EC2::Instance")})
    journal.record("drained")
    emit(PhaseFinished("archiving"))
    in_app = {unit.stack_name for unit in config.stacks()}
    emit(PhaseStarted("deleting stacks", len(deployed)))
    # Stacks the app no longer builds go first, through CloudFormation itself: they are students' stacks, which
    # may import from class stacks deleted next.
    _delete_dropped([unit for unit in deployed if unit.stack_name not in in_app], target, emit)
    app_units = [unit for unit in deployed if unit.stack_name in in_app]
    if app_units:
        _delete_stacks(config, config_path, target, app_units, result, emit)
    result.deleted_stacks = [unit.stack_name for unit in deployed]
    if students is None:
        # Buckets the stacks retain on delete (a solo learner's, so a plain `cdk destroy` loses nothing) stay
        # behind them: already archived and emptied above, they go now.
        _remove_retained(ctx, config)
    journal.record("stacks")
    emit(PhaseFinished("deleting stacks"))
    _delete_notebook_logs(target, config, None if students is None else result.stopped)
    # A partial destroy: what the course's remaining stacks hold (LabGuard's key, the class network) stays.
    partial = students is not None or set(labs) != set(LABS)
    staying = list(live_resources(target, config)) if partial else []
    result.audit = audit_course(target.clients, config.course_id, config.names.iam_path, known=result.known,
                                keep_stacks=staying, students=students)
    for account, clients in result.student_accounts.items():
        # What the stack set's deletion left in a student's account counts as left, as in the class account.
        own = audit_course(clients, config.course_id, config.names.iam_path)
        result.audit.leftovers += [replace(item, name=f"{item.name} (account {account})") for item in own.leftovers]
        result.audit.unchecked += [f"{note} (account {account})" for note in own.unchecked]
    journal.record("audited")
    emit(StepDone("teardown"))
    return result


def teardown(config: LabConfig, config_path: Path, target: Target, archive: Path | None, emit: Sink = ignore,
             journal: Journal | None = None) -> DestroyResult:
    """Every lab of the course, LabGuard included: freeze, archive, delete, audit; resumable through the journal.
    Confirming is the caller's part."""
    journal = journal if journal is not None else Journal.for_course(config)
    if journal.data.get("target", target.label) != target.label:
        journal = Journal(journal.path)  # a journal of another endpoint (an emulator gone since) does not apply
        journal.data = {"done": []}
    journal.data["target"] = target.label
    result = destroy(config, config_path, target, list(LABS), archive_dir=archive, emit=emit, journal=journal)
    if result.audit.clean:
        journal.finish()
    return result


def _delete_dropped(units: list[StackUnit], target: Target, emit: Sink) -> None:
    if not units:
        return
    cfn = target.clients("cloudformation")
    for unit in units:
        emit(StackStarted(unit.stack_name, "destroy"))
        emit(Info(f"{unit.stack_name}: {unit.student} is no longer in the course file"))
        cfn.delete_stack(StackName=unit.stack_name)
    waiter = cfn.get_waiter("stack_delete_complete")
    for unit in units:
        waiter.wait(StackName=unit.stack_name, WaiterConfig={"Delay": max(1, target.wait_delay), "MaxAttempts": 120})
        emit(StackFinished(unit.stack_name, "destroy", 0.0))


def _delete_stacks(config: LabConfig, config_path: Path, target: Target, units: list[StackUnit],
                   result: DestroyResult, emit: Sink) -> None:
    # Synthesize once; a retry after a failed delete then costs no second synthesis. A delete reads only the
    # stack names from the assembly, so CDK's CloudFormation validation of the templates (about 3 s) is skipped.
    synthesize(target, config_path, emit, validate=False, allow_expired=True)
    # The CLI deletes dependants first: students' GPU stacks before the class network they import.
    vpcs = [(target.clients, name) for kind, name in result.known if kind == "vpc"]
    vpcs += [(result.student_accounts[account], vpc) for account, vpc in result.account_vpcs]
    finished: set[str] = set()
    try:
        run_stacks("destroy", config, config_path, target, units, emit, allow_expired=True, finished=finished,
                   report_failures=not vpcs)
    except OperationError as exc:
        if not vpcs:
            raise
        # DELETE_FAILED on a network: clear what blocks the VPCs, then delete the stacks again.
        emit(Info(f"{exc}; cleaning {'the VPC' if len(vpcs) == 1 else f'{len(vpcs)} VPCs'} directly and retrying"))
        for clients, vpc_id in vpcs:
            clean_vpc(clients("ec2"), vpc_id, echo=lambda line: emit(Info(line)),
                      wait_delay=target.wait_delay)
        # Stacks already gone are skipped by the CLI.
        run_stacks("destroy", config, config_path, target, units, emit, allow_expired=True, finished=finished)


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
