"""Account-per-student mode: the class OU, one tagged account per student, and the stack set's view of them.

Students are data in AWS Organizations, not in any template: an account tagged labkit:course and
labkit:student inside the class OU is a student's environment, and the class stack set (which targets the OU)
deploys to it. Every function here is idempotent, so an interrupted run is finished by running it again.
Clients are passed in (organizations, cloudformation) so tests can use moto or a Stubber.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import boto3
from botocore.exceptions import ClientError

from course.naming import TAG_COURSE, TAG_STUDENT

# The stack set's instance states, from ready to broken: an account reports its worst region.
_STATE_ORDER = ("CURRENT", "OUTDATED", "INOPERABLE")


class OrganizationError(RuntimeError):
    """An Organizations or StackSets step that cannot be done; str() is one line saying why."""


def _root_id(org: Any) -> str:
    try:
        return str(org.list_roots()["Roots"][0]["Id"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "AWSOrganizationsNotInUseException":
            raise OrganizationError("this account is not in an organization (create one with all features)") from None
        raise


def ensure_ou(org: Any, name: str) -> str:
    """The id of the OU `name` directly under the root, created when missing (AWS refuses duplicates, moto not)."""
    root = _root_id(org)
    for page in org.get_paginator("list_organizational_units_for_parent").paginate(ParentId=root):
        for unit in page["OrganizationalUnits"]:
            if unit["Name"] == name:
                return str(unit["Id"])
    return str(org.create_organizational_unit(ParentId=root, Name=name)["OrganizationalUnit"]["Id"])


def student_accounts(org: Any, course: str) -> dict[str, str]:
    """{student: account} for the active accounts tagged for `course`; one tag lookup per account of the org."""
    found: dict[str, str] = {}
    for page in org.get_paginator("list_accounts").paginate():
        for account in page["Accounts"]:
            if account.get("Status", "ACTIVE") != "ACTIVE":
                continue  # a closed account cannot host labs again; the student gets a new one
            tags = {tag["Key"]: tag["Value"] for tag in org.list_tags_for_resource(ResourceId=account["Id"])["Tags"]}
            student = tags.get(TAG_STUDENT)
            if tags.get(TAG_COURSE) != course or student is None:
                continue
            if student in found:
                raise OrganizationError(f"student {student} has two {course} accounts: {found[student]} and "
                                        f"{account['Id']}; untag one")
            found[student] = account["Id"]
    return found


def _move_into(org: Any, account: str, ou_id: str, student: str, echo: Callable[[str], None]) -> None:
    try:
        parents = org.list_parents(ChildId=account)["Parents"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("AccountNotFoundException", "ChildNotFoundException"):
            raise OrganizationError(f"account {account} of student {student} is not in this organization "
                                    "(invite it first)") from None
        raise
    source = parents[0]["Id"]
    if source != ou_id:
        org.move_account(AccountId=account, SourceParentId=source, DestinationParentId=ou_id)
        echo(f"{student}: account {account} moved into {ou_id}")


def _tags(course: str, student: str) -> list[dict[str, str]]:
    return [{"Key": TAG_COURSE, "Value": course}, {"Key": TAG_STUDENT, "Value": student}]


def _in_flight(org: Any) -> dict[str, str]:
    """{account name: request id} of creations still running, e.g. from a run that was interrupted."""
    pages = org.get_paginator("list_create_account_status").paginate(States=["IN_PROGRESS"])
    return {status["AccountName"]: status["Id"] for page in pages for status in page["CreateAccountStatuses"]}


def _wait_for_creations(org: Any, requests: dict[str, str], *, poll_seconds: float, max_polls: int) -> dict[str, str]:
    """Poll all creation requests together; {student: account} once each has SUCCEEDED."""
    created: dict[str, str] = {}
    pending = dict(requests)
    for attempt in range(max_polls):
        for student, request in list(pending.items()):
            status = org.describe_create_account_status(CreateAccountRequestId=request)["CreateAccountStatus"]
            if status["State"] == "FAILED":
                raise OrganizationError(f"creating the account of student {student} failed: "
                                        f"{status.get('FailureReason', 'no reason given')}")
            if status["State"] == "SUCCEEDED":
                created[student] = status["AccountId"]
                del pending[student]
        if not pending:
            return created
        if attempt + 1 < max_polls:
            time.sleep(poll_seconds)
    raise OrganizationError(f"accounts still being created after {max_polls} checks: {', '.join(sorted(pending))}; "
                            "run again later to finish")


def ensure_student_accounts(org: Any, ou_id: str, course: str, students: Sequence[tuple[str, str, str | None]], *,
                            echo: Callable[[str], None] = print, poll_seconds: float = 5,
                            max_polls: int = 120) -> dict[str, str]:
    """{student: account} with every account tagged and inside `ou_id`, creating the accounts that are missing.

    `students` holds (student id, email, existing account id or None). An account already tagged for the
    student is reused; an existing id given is tagged and moved. Creations take minutes in AWS, so all of them
    are started before any is polled; a creation left running by an interrupted run is waited for, not repeated.
    """
    tagged = student_accounts(org, course)
    owners = {account: student for student, account in tagged.items()}
    accounts: dict[str, str] = {}
    requests: dict[str, str] = {}
    in_flight: dict[str, str] | None = None
    placed: set[str] = set()
    for student, email, existing in students:
        if existing is not None:
            holder = tagged[student] if tagged.get(student, existing) != existing else existing
            if holder != existing or owners.get(existing, student) != student:
                raise OrganizationError(f"student {student}: account {existing} given, but account {holder} "
                                        f"is tagged for {owners.get(holder, student)}")
            _move_into(org, existing, ou_id, student, echo)
            org.tag_resource(ResourceId=existing, Tags=_tags(course, student))
            accounts[student] = existing
            placed.add(student)
        elif student in tagged:
            # Checked again below: a reused account may have been moved out, or an earlier run stopped before moving it.
            accounts[student] = tagged[student]
        else:
            in_flight = _in_flight(org) if in_flight is None else in_flight
            name = f"{course}-{student}"
            if name in in_flight:
                requests[student] = in_flight[name]
                echo(f"{student}: account {name} is still being created")
                continue
            status = org.create_account(Email=email, AccountName=name, Tags=_tags(course, student))
            requests[student] = status["CreateAccountStatus"]["Id"]
            echo(f"{student}: creating account {name}")
    for student, account in _wait_for_creations(org, requests, poll_seconds=poll_seconds, max_polls=max_polls).items():
        echo(f"{student}: account {account} created")
        accounts[student] = account
    for student, account in accounts.items():
        if student not in placed:
            _move_into(org, account, ou_id, student, echo)  # new accounts land in the root
    return accounts


def stack_instances(cfn: Any, stack_set_name: str, call_as: str = "SELF") -> list[dict[str, Any]]:
    """The stack set's instance summaries; [] when there is no stack set. Read once, they serve both
    `stack_instance_states` and `instance_stacks` (`instances=`)."""
    try:
        return [instance for page in cfn.get_paginator("list_stack_instances").paginate(
            StackSetName=stack_set_name, CallAs=call_as) for instance in page["Summaries"]]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "StackSetNotFoundException":
            return []
        raise


def stack_instance_states(cfn: Any, stack_set_name: str, *, call_as: str = "SELF",
                          instances: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """{account: state} of the stack set's instances, e.g. "CURRENT (SUCCEEDED)"; {} when there is no stack set.

    An account reports its worst region: its labs are only ready when every region is. moto ignores CallAs.
    """
    states: dict[str, tuple[int, str]] = {}
    for instance in stack_instances(cfn, stack_set_name, call_as) if instances is None else instances:
        status = instance.get("Status", "INOPERABLE")
        detail = instance.get("StackInstanceStatus", {}).get("DetailedStatus")
        rank = _STATE_ORDER.index(status) if status in _STATE_ORDER else len(_STATE_ORDER)
        text = f"{status} ({detail})" if detail else status
        if instance["Account"] not in states or rank > states[instance["Account"]][0]:
            states[instance["Account"]] = (rank, text)
    return {account: text for account, (_, text) in states.items()}


def instance_stacks(cfn: Any, stack_set_name: str, *, region: str, call_as: str = "SELF",
                    instances: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """{account: stack id} of the stack set's stacks in `region`: what each student account holds is read there."""
    listed = stack_instances(cfn, stack_set_name, call_as) if instances is None else instances
    return {instance["Account"]: instance["StackId"] for instance in listed
            if instance.get("Region") == region and instance.get("StackId")}


def remove_stack_instances(cfn: Any, stack_set_name: str, ou_ids: Sequence[str], regions: Sequence[str], *,
                           max_concurrent_percentage: int, failure_tolerance_percentage: int, retain: bool = False,
                           call_as: str = "SELF") -> str | None:
    """Start deleting the stack set's stacks in every account of `ou_ids`; the operation id, None without a stack set.

    Teardown: a stack set with instances cannot be deleted. `retain=True` keeps the stacks (and their costs)
    in the accounts while detaching them from the stack set. moto ignores DeploymentTargets here (it deletes
    only listed Accounts), so against moto the instances stay.
    """
    try:
        response = cfn.delete_stack_instances(
            StackSetName=stack_set_name,
            DeploymentTargets={"OrganizationalUnitIds": list(ou_ids)},
            Regions=list(regions),
            OperationPreferences={
                "MaxConcurrentPercentage": max_concurrent_percentage,
                "FailureTolerancePercentage": failure_tolerance_percentage,
                "RegionConcurrencyType": "PARALLEL",
            },
            RetainStacks=retain,
            CallAs=call_as,
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "StackSetNotFoundException":
            return None
        raise
    return str(response["OperationId"])


# Organizations creates this role in every account it creates, trusted by the management account.
ACCESS_ROLE = "OrganizationAccountAccessRole"


def account_clients(sts: Any, account: str, *, region: str, endpoint_url: str | None = None,
                    role: str = ACCESS_ROLE) -> Callable[[str], Any]:
    """A client factory acting in a student's account through `role`, for teardown work done from the class
    account (archive the student's bucket before the stack set deletes it, then audit the account)."""
    try:
        credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}",
                                      RoleSessionName="labkit-teardown")["Credentials"]
    except ClientError as exc:
        raise OrganizationError(f"cannot act in account {account} through {role}: "
                                f"{exc.response['Error']['Code']}") from None
    session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                            aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"], region_name=region)
    return functools.cache(functools.partial(session.client, endpoint_url=endpoint_url))
