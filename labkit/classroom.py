"""Classroom work behind `labctl provision`, `status`, `handout` and `cost`: plain data in, plain data out.

labctl renders what these return (rich tables or `--json`); tests call them directly against moto.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab_scripts import access_keys, instance, notebook
from lab_scripts.cost import CostEstimate, PriceTable, estimate
from lab_scripts.organization import stack_instance_states, student_accounts
from lab_scripts.quotas import Capacity, account_capacity
from course.catalog import DLAMIS
from course.config import LabConfig
from labkit.jobs import Target, deployed_instances, deployed_notebooks, deployed_users, parallel
from course.layout import PER_STUDENT_LABS, STUDENT_ACCOUNT_DIR
from course.naming import PLACEHOLDER_STUDENT, STUDENT_ACCOUNT, STUDENT_ID, CourseNames

DAYS_PER_WEEK = 7


class ClassroomError(RuntimeError):
    """A classroom request refused before anything changed; one line naming the student, row or flag."""


@dataclass(frozen=True)
class PlannedStack:
    stack_name: str
    student: str
    resources: int
    types: str


def where(config: LabConfig, index: int) -> str:
    """How an error names a student: the roster row when there is a roster, else the course file's list entry."""
    if config.roster:
        row = config.roster[index]
        return f"{config.classroom.roster}: row {row.row}: id '{row.id}'"
    return f"students[{index}] '{config.students[index]}'"


def check_capacity(config: LabConfig, target: Target) -> list[Capacity]:
    """Refuse a class larger than the account's quotas hold, naming the first student that does not fit."""
    if config.classroom.per_account:
        return []  # every student brings their own account and its own quotas
    per_student = len(PER_STUDENT_LABS)
    capacities = account_capacity(
        target.clients, notebook_type=config.sagemaker.instance_type, gpu_type=config.dlami.instance_type,
        stacks_per_student=per_student, users_per_student=1)
    # Stacks and users the course already has are counted as in use; redeploying them needs no new quota.
    existing = len(deployed_notebooks(target, config))
    known = [c for c in capacities if c.students is not None]
    if known:
        tightest = min(known, key=lambda c: c.students or 0)
        fits = (tightest.students or 0) + existing
        if fits < len(config.students):
            raise ClassroomError(f"{where(config, fits)} does not fit the account: {tightest.description} holds "
                                 f"{fits} students; request a quota increase or use account-per-student mode")
    return capacities


def plan(config: LabConfig, assembly: Path) -> list[PlannedStack]:
    """Each stack of the course with what its synthesized template holds."""
    rows = [_planned(unit.stack_name, unit.student or "(class)", assembly / f"{unit.construct_id}.template.json")
            for unit in config.stacks()]
    if config.classroom.per_account:
        # What the stack set puts in every student's account (LabClassroom writes it beside its own template).
        rows.append(_planned(config.names.stack(STUDENT_ACCOUNT), "(each account)",
                             assembly / STUDENT_ACCOUNT_DIR / f"{STUDENT_ACCOUNT}.template.json"))
    return rows


def _planned(stack_name: str, student: str, template_path: Path) -> PlannedStack:
    template = json.loads(template_path.read_text())
    kinds: dict[str, int] = {}
    for resource in template.get("Resources", {}).values():
        if resource["Type"] != "AWS::CDK::Metadata":
            kind = resource["Type"].rsplit("::", 1)[-1]
            kinds[kind] = kinds.get(kind, 0) + 1
    types = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    return PlannedStack(stack_name, student, sum(kinds.values()), types)


def class_cost(config: LabConfig, prices: PriceTable, *, today: dt.date | None = None) -> CostEstimate:
    """The course until its expiry date, with the idle stops as configured and without them."""
    days = max(1, (config.expires - (today or dt.date.today())).days)
    return estimate(
        students=len(config.students), weeks=days / DAYS_PER_WEEK,
        notebook_type=config.sagemaker.instance_type, notebook_volume_gb=config.sagemaker.volume_gb,
        notebook_idle_minutes=config.sagemaker.idle_minutes,
        gpu_type=config.dlami.instance_type, gpu_volume_gb=config.dlami.volume_gb,
        gpu_idle_minutes=config.dlami.idle_minutes, prices=prices,
    )


@dataclass(frozen=True)
class StudentStatus:
    student: str
    name: str
    notebook: str
    notebook_state: str
    instance: str
    instance_state: str
    access_keys: str


@dataclass(frozen=True)
class AccountStatus:
    """Account-per-student mode: a student's own account and the state of their labs there."""

    student: str
    name: str
    account: str
    environment: str


def account_status(target: Target, config: LabConfig) -> list[AccountStatus]:
    """Each student's account (from its Organizations tags) and the stack set's instance there."""
    accounts = student_accounts(target.clients("organizations"), config.course_id)
    states = stack_instance_states(target.clients("cloudformation"), config.names.stack(STUDENT_ACCOUNT))
    rows = []
    for row in config.roster:
        account = accounts.get(row.id) or row.account or ""
        state = states.get(account, "not deployed") if account else "no account yet"
        rows.append(AccountStatus(row.id, row.name, account or "-", state))
    return rows


def status(target: Target, config: LabConfig) -> list[StudentStatus]:
    """Each student's environments as the services report them now."""
    notebooks, instances = deployed_notebooks(target, config), deployed_instances(target, config)
    users = deployed_users(target, config)
    sm, ec2, iam = target.clients("sagemaker"), target.clients("ec2"), target.clients("iam")

    def read(student: str) -> StudentStatus:
        row = config.student_row(student)
        name = notebooks.get(student, "")
        nb_state = _state(lambda: notebook.status(sm, name).status) if name else "not deployed"
        gpu = instances.get(student, "")
        gpu_state = _state(lambda: instance.status(ec2, gpu).state) if gpu else "not deployed"
        keys = "no user"
        if student in users:
            active = [k for k in access_keys.list_keys(iam, users[student]) if k.status == "Active"]
            keys = f"{len(active)} active" if active else "none"
        return StudentStatus(student, row.name if row else student, name or "-", nb_state, gpu or "-", gpu_state,
                             keys)

    return parallel(read, config.students)


def _state(read: Callable[[], str]) -> str:
    """A machine's state, or "gone" when it was deleted behind the stack's back."""
    try:
        return str(read())
    except (notebook.NotebookError, instance.InstanceError):
        return "gone"


@dataclass(frozen=True)
class Handout:
    student: str
    path: Path
    credentials: str  # "issued AKIA...WXYZ -> alice.credentials" or why there is none; never the secret


def handouts(target: Target, config: LabConfig, students: list[str], out: Path) -> list[Handout]:
    """Private files per student (0600): `<id>.md`, how to open their notebook and GPU instance, and
    `<id>.credentials`, a new access key as an AWS CLI profile.

    A student who already holds an access key gets no new one (its secret cannot be read back): the file says
    so, and `labctl keys delete STUDENT` then a new handout replaces it.
    """
    unknown = [s for s in students if s not in config.students]
    if unknown:
        raise ClassroomError(f"student {unknown[0]!r} is not in the course")
    if config.classroom.per_account:
        return _account_handouts(target, config, students, out)
    notebooks, instances = deployed_notebooks(target, config), deployed_instances(target, config)
    users = deployed_users(target, config)
    missing = [s for s in students if s not in users]
    if missing:
        raise ClassroomError(f"{missing[0]} has no IAM user yet: provision the class first (labctl provision)")
    iam, sm = target.clients("iam"), target.clients("sagemaker")
    made = []
    for student in students:
        profile, region = config.course_id, config.region
        existing = access_keys.list_keys(iam, users[student])
        key = None if existing else access_keys.issue(iam, users[student])
        lines = _handout_lines(config, student, profile, region, notebooks, instances, sm)
        if key:
            keyfile = access_keys.write_private(out / f"{student}.credentials",
                                                access_keys.credentials_text(key, profile, region))
            credentials = f"issued {access_keys.masked(key.access_key_id)} -> {keyfile.name}"
            lines += ["## Credentials", "", f"`{keyfile.name}` holds your access key as the AWS profile `{profile}`: "
                      "append it to ~/.aws/credentials. It is yours alone: never share or commit it.", ""]
        else:
            credentials = f"already holds {access_keys.masked(existing[0].access_key_id)}; no new key"
            lines += ["## Credentials", "", f"Use the access key you already received (profile `{profile}`). "
                      "Lost it? Ask your instructor for a new one.", ""]
        path = access_keys.write_private(out / f"{student}.md", "\n".join(lines))
        made.append(Handout(student, path, credentials))
    return made


def _account_handouts(target: Target, config: LabConfig, students: list[str], out: Path) -> list[Handout]:
    """Account-per-student mode: each student signs in to their own account; the file says where and how."""
    accounts = student_accounts(target.clients("organizations"), config.course_id)
    missing = [s for s in students if s not in accounts]
    if missing:
        raise ClassroomError(f"{missing[0]} has no account yet: provision the class first (labctl provision)")
    made = []
    for student in students:
        account, region, profile = accounts[student], config.region, config.course_id
        names = CourseNames(config.course_id, account, region).student(PLACEHOLDER_STUDENT)
        row = config.student_row(student)
        lines = [f"# {config.course_id} lab account for {row.name if row else student}", "",
                 f"Your own AWS account {account} (region {region}); the labs end on {config.expires}.",
                 f"Sign in at https://{account}.signin.aws.amazon.com/console with the access your instructor set "
                 f"up (IAM Identity Center), and configure the AWS CLI profile `{profile}` for it.", "",
                 "## SageMaker notebook", "",
                 f"    aws sagemaker create-presigned-notebook-instance-url --notebook-instance-name "
                 f"{names.notebook} --region {region} --profile {profile}", "",
                 f"Your bucket: s3://{names.bucket}", "",
                 "## GPU workstation (Deep Learning AMI)", "",
                 f"    aws ec2 describe-instances --filters Name=tag:Name,Values={names.workstation} "
                 f"--query 'Reservations[].Instances[].InstanceId' --region {region} --profile {profile}",
                 f"    {instance.session_command('<instance id>', region=region, profile=profile)}", "",
                 f"Both stop themselves when idle ({config.sagemaker.idle_minutes} and {config.dlami.idle_minutes} "
                 "minutes). Keep your work in your bucket: it is archived when the course ends.", ""]
        path = access_keys.write_private(out / f"{student}.md", "\n".join(lines))
        made.append(Handout(student, path, f"own account {account}; no access key issued"))
    return made


def _handout_lines(config: LabConfig, student: str, profile: str, region: str, notebooks: dict[str, str],
                   instances: dict[str, str], sm: Any) -> list[str]:
    row = config.student_row(student)
    who = f"{row.name} <{row.email}>" if row else student
    lines = [f"# {config.course_id} lab access for {who}", "",
             f"Student id `{student}`, region {region}; the labs end on {config.expires}.", ""]
    if student in notebooks:
        name = notebooks[student]
        url = notebook.status(sm, name).url
        lines += ["## SageMaker notebook", "", f"Notebook `{name}`" + (f" at https://{url}" if url else "") + ".",
                  "Open it with a sign-in link (valid 5 minutes):", "",
                  f"    aws sagemaker create-presigned-notebook-instance-url --notebook-instance-name {name} "
                  f"--region {region} --profile {profile}", "",
                  f"It stops itself after {config.sagemaker.idle_minutes} idle minutes; start it again with",
                  f"`aws sagemaker start-notebook-instance --notebook-instance-name {name} --profile {profile}`.",
                  "Keep your work in your bucket: the notebook's disk is deleted when the course ends.", ""]
        lines += [f"Your bucket: s3://{config.names.student(student).bucket}", ""]
    if student in instances:
        gpu = instances[student]
        login = DLAMIS[config.dlami.ami_type].login_user
        lines += ["## GPU workstation (Deep Learning AMI)", "", f"Instance `{gpu}` ({config.dlami.instance_type}); "
                  f"no SSH port is open: connect through Session Manager (as `{login}` with `sudo su - {login}`):",
                  "", f"    aws ec2 start-instances --instance-ids {gpu} --region {region} --profile {profile}",
                  f"    {instance.session_command(gpu, region=region, profile=profile)}", "",
                  f"It stops after {config.dlami.idle_minutes} idle minutes. Stop it yourself when you leave.", ""]
    return lines


def parse_students(values: list[str]) -> list[str]:
    """Student ids given on the command line, checked like the course file's."""
    for value in values:
        if not STUDENT_ID.match(value):
            raise ClassroomError(f"student {value!r} is not a student id (a-z 0-9 -)")
    return values


def as_dicts(rows: list[Any]) -> list[dict[str, Any]]:
    """Rows (dataclasses) as JSON-ready dicts: paths as strings."""
    return [{k: str(v) if isinstance(v, Path) else v for k, v in asdict(row).items()} for row in rows]


def as_json(rows: list[Any]) -> str:
    return json.dumps(as_dicts(rows), indent=2)
