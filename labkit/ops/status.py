"""`labctl status`: each student's environments as the services report them, and the course's own state
(a paused guard, an unfinished teardown, stacks stuck in a state only a repair gets out of)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from course.config import LabConfig
from course.naming import STUDENT_ACCOUNT
from course.roster import Student
from lab_scripts import access_keys, instance, notebook
from lab_scripts.organization import stack_instance_states, stack_instances, student_accounts
from labkit.deployed import (STUCK, deployed_instances, deployed_notebooks, deployed_users, physical_of,
                             stuck_stacks)
from labkit.ops.accounts import deployed_accounts, notebook_names
from labkit.ops.teardown import unfinished_teardown
from labkit.target import Target, parallel


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
    # Read in the student's account from the stack set's stack there ("-" without one).
    notebook_state: str = "-"
    bucket: str = "-"
    instance_state: str = "-"


@dataclass
class CourseState:
    """What is wrong with the course as a whole, each with the command that fixes it."""

    problems: list[str] = field(default_factory=list)


def account_status(target: Target, config: LabConfig) -> list[AccountStatus]:
    """Each student's account (from its Organizations tags), the stack set's instance there, and the notebook,
    bucket and GPU instance of that instance's stack, read in the account itself."""
    accounts = student_accounts(target.clients("organizations"), config.course_id)
    cfn, stack_set = target.clients("cloudformation"), config.names.stack(STUDENT_ACCOUNT)
    instances = stack_instances(cfn, stack_set)  # one ListStackInstances for the states and the stacks
    states = stack_instance_states(cfn, stack_set, instances=instances)
    deployed = deployed_accounts(target, config, instances) if states else {}

    def read(row: Student) -> AccountStatus:
        account = accounts.get(row.id) or row.account or ""
        state = states.get(account, "not deployed") if account else "no account yet"
        found = deployed.get(account)
        if found is None:
            return AccountStatus(row.id, row.name, account or "-", state)
        resources = found.resources()
        sm, ec2 = found.target.clients("sagemaker"), found.target.clients("ec2")
        notebooks = notebook_names(resources)
        gpus = physical_of(resources, "AWS::EC2::Instance")
        return AccountStatus(
            row.id, row.name, account, state,
            _state(lambda: notebook.status(sm, notebooks[0]).status) if notebooks else "not deployed",
            ", ".join(physical_of(resources, "AWS::S3::Bucket")) or "-",
            _state(lambda: instance.status(ec2, gpus[0]).state) if gpus else "not deployed")

    return parallel(read, list(config.roster))


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
            listed = access_keys.list_keys(iam, users[student])
            active = [k for k in listed if k.status == "Active"]
            keys = f"{len(active)} active" if active else ("deactivated" if listed else "none")
        return StudentStatus(student, row.name if row else student, name or "-", nb_state, gpu or "-", gpu_state,
                             keys)

    return parallel(read, config.students)


def _state(read: Callable[[], str]) -> str:
    """A machine's state, or "gone" when it was deleted behind the stack's back."""
    try:
        return str(read())
    except (notebook.NotebookError, instance.InstanceError):
        return "gone"


def course_state(target: Target, config: LabConfig) -> CourseState:
    """A paused guard, an unfinished teardown and stuck stacks, each with the command that fixes it."""
    state = CourseState()
    journal = unfinished_teardown(config)
    if journal is not None:
        done = ", ".join(journal.get("done", [])) or "nothing yet"
        state.problems.append(f"a teardown started and did not finish (done: {done}); "
                              f"`labctl teardown --yes --confirm {config.course_id}` continues it")
    try:
        rule = target.clients("events").describe_rule(Name=config.names.guard.schedule)
        if rule.get("State") == "DISABLED" and journal is None:
            state.problems.append(f"the guard's schedule {config.names.guard.schedule} is paused; "
                                  "`labctl guard resume` turns it back on")
        elif rule.get("State") == "DISABLED":
            state.problems.append(f"the guard's schedule {config.names.guard.schedule} is paused by that teardown")
    except ClientError:
        pass  # LabGuard is not deployed
    for name, status_ in stuck_stacks(target, config).items():
        state.problems.append(f"stack {name} is {status_} ({STUCK[status_]}); `labctl repair` removes it")
    return state
