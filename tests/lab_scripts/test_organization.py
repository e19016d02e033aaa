"""Account-per-student mode against moto's Organizations and StackSets (what moto does not model is said so)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lab_scripts.organization import (
    OrganizationError,
    ensure_ou,
    ensure_student_accounts,
    remove_stack_instances,
    stack_instance_states,
)
from course.naming import TAG_COURSE, TAG_STUDENT

STUDENTS = [("alice", "alice@example.com", None), ("bob", "bob@example.com", None), ("carol", "carol@example.com", None)]
TEMPLATE = json.dumps({"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}})


@pytest.fixture
def org(aws: Any) -> Any:
    client = aws("organizations")
    client.create_organization(FeatureSet="ALL")
    return client


def accounts(org: Any, ou_id: str, **kwargs: Any) -> dict[str, str]:
    return ensure_student_accounts(org, ou_id, "ml101", STUDENTS, echo=lambda line: None, poll_seconds=0, **kwargs)


def tags(org: Any, account: str) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in org.list_tags_for_resource(ResourceId=account)["Tags"]}


def parent(org: Any, account: str) -> str:
    return str(org.list_parents(ChildId=account)["Parents"][0]["Id"])


def test_ou_is_created_once_and_found_by_name(org: Any) -> None:
    ou_id = ensure_ou(org, "ml101-students")
    assert ensure_ou(org, "ml101-students") == ou_id
    root = org.list_roots()["Roots"][0]["Id"]
    assert [unit["Name"] for unit in org.list_organizational_units_for_parent(ParentId=root)["OrganizationalUnits"]] \
        == ["ml101-students"]


def test_no_organization_is_one_line(aws: Any) -> None:
    with pytest.raises(OrganizationError, match="^this account is not in an organization"):
        ensure_ou(aws("organizations"), "ml101-students")


def test_accounts_are_created_tagged_and_moved_into_the_ou(org: Any) -> None:
    ou_id = ensure_ou(org, "ml101-students")
    lines: list[str] = []
    created = ensure_student_accounts(org, ou_id, "ml101", STUDENTS, echo=lines.append, poll_seconds=0)
    assert sorted(created) == ["alice", "bob", "carol"]
    assert len(set(created.values())) == 3
    for student, account in created.items():
        assert tags(org, account) == {TAG_COURSE: "ml101", TAG_STUDENT: student}
        assert parent(org, account) == ou_id
        assert org.describe_account(AccountId=account)["Account"]["Name"] == f"ml101-{student}"
    # All creations start before the first is polled.
    assert [line.split(": ")[1] for line in lines[:3]] == [f"creating account ml101-{s}" for s, _, _ in STUDENTS]


def test_second_run_creates_nothing(org: Any) -> None:
    ou_id = ensure_ou(org, "ml101-students")
    first = accounts(org, ou_id)
    count = len(org.list_accounts()["Accounts"])
    lines: list[str] = []
    assert ensure_student_accounts(org, ou_id, "ml101", STUDENTS, echo=lines.append, poll_seconds=0) == first
    assert len(org.list_accounts()["Accounts"]) == count
    assert lines == []


def test_reused_account_moved_out_of_the_ou_is_moved_back(org: Any) -> None:
    ou_id = ensure_ou(org, "ml101-students")
    alice = accounts(org, ou_id)["alice"]
    root = org.list_roots()["Roots"][0]["Id"]
    org.move_account(AccountId=alice, SourceParentId=ou_id, DestinationParentId=root)
    assert accounts(org, ou_id)["alice"] == alice
    assert parent(org, alice) == ou_id


def test_closed_account_is_replaced_not_reused(org: Any) -> None:
    ou_id = ensure_ou(org, "ml101-students")
    alice = accounts(org, ou_id)["alice"]
    org.close_account(AccountId=alice)
    replacement = accounts(org, ou_id)["alice"]
    assert replacement != alice
    assert parent(org, replacement) == ou_id


def test_existing_account_is_moved_and_tagged(org: Any) -> None:
    ou_id = ensure_ou(org, "ml101-students")
    status = org.create_account(Email="dave@example.com", AccountName="dave-own")["CreateAccountStatus"]
    existing = status["AccountId"]
    result = ensure_student_accounts(org, ou_id, "ml101", [("dave", "dave@example.com", existing)],
                                     echo=lambda line: None, poll_seconds=0)
    assert result == {"dave": existing}
    assert parent(org, existing) == ou_id
    assert tags(org, existing) == {TAG_COURSE: "ml101", TAG_STUDENT: "dave"}


def test_existing_account_outside_the_organization_is_one_line(org: Any) -> None:
    ou_id = ensure_ou(org, "ml101-students")
    with pytest.raises(OrganizationError, match="^account 999999999999 of student dave is not in this organization"):
        ensure_student_accounts(org, ou_id, "ml101", [("dave", "dave@example.com", "999999999999")],
                                echo=lambda line: None)


def test_existing_id_conflicting_with_tagged_account_is_refused(org: Any) -> None:
    ou_id = ensure_ou(org, "ml101-students")
    alice = accounts(org, ou_id)["alice"]
    other = org.create_account(Email="x@example.com", AccountName="x")["CreateAccountStatus"]["AccountId"]
    with pytest.raises(OrganizationError, match=f"^student alice: account {other} given, but account {alice} is "
                                                "tagged for alice$"):
        ensure_student_accounts(org, ou_id, "ml101", [("alice", "alice@example.com", other)], echo=lambda line: None)


def test_account_of_another_student_is_not_shared(org: Any) -> None:
    ou_id = ensure_ou(org, "ml101-students")
    bob = accounts(org, ou_id)["bob"]
    with pytest.raises(OrganizationError, match=f"^student dave: account {bob} given, but account {bob} is "
                                                "tagged for bob$"):
        ensure_student_accounts(org, ou_id, "ml101", [("dave", "dave@example.com", bob)], echo=lambda line: None)


def test_failed_creation_names_the_student(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's creations always SUCCEED at once; a FAILED status is patched in."""
    ou_id = ensure_ou(org, "ml101-students")
    monkeypatch.setattr(org, "describe_create_account_status", lambda **kwargs: {"CreateAccountStatus": {
        "Id": kwargs["CreateAccountRequestId"], "State": "FAILED", "FailureReason": "EMAIL_ALREADY_EXISTS"}})
    with pytest.raises(OrganizationError) as failure:
        accounts(org, ou_id)
    assert str(failure.value) == "creating the account of student alice failed: EMAIL_ALREADY_EXISTS"


def test_slow_creation_gives_up_after_max_polls(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ou_id = ensure_ou(org, "ml101-students")
    monkeypatch.setattr(org, "describe_create_account_status", lambda **kwargs: {"CreateAccountStatus": {
        "Id": kwargs["CreateAccountRequestId"], "State": "IN_PROGRESS"}})
    with pytest.raises(OrganizationError, match="after 3 checks: alice, bob, carol; run again later"):
        accounts(org, ou_id, max_polls=3)


def test_creation_left_running_is_waited_for_not_repeated(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto never reports IN_PROGRESS, so the listing of running creations is patched."""
    ou_id = ensure_ou(org, "ml101-students")
    earlier = org.create_account(Email="alice@example.com", AccountName="ml101-alice",
                                 Tags=[{"Key": TAG_COURSE, "Value": "other"}])["CreateAccountStatus"]
    real_paginator = org.get_paginator

    def paginator(name: str) -> Any:
        if name != "list_create_account_status":
            return real_paginator(name)
        return type("Pages", (), {"paginate": lambda self, **kw: [{"CreateAccountStatuses": [
            {"Id": earlier["Id"], "AccountName": "ml101-alice", "State": "IN_PROGRESS"}]}]})()

    monkeypatch.setattr(org, "get_paginator", paginator)
    lines: list[str] = []
    result = ensure_student_accounts(org, ou_id, "ml101", STUDENTS[:1], echo=lines.append, poll_seconds=0)
    assert result == {"alice": earlier["AccountId"]}
    assert lines[0] == "alice: account ml101-alice is still being created"
    assert parent(org, earlier["AccountId"]) == ou_id


def test_stack_instances_cover_each_account_of_the_ou(aws: Any, org: Any) -> None:
    """moto ignores AutoDeployment, ManagedExecution, OperationPreferences and CallAs, and deploys at once."""
    ou_id = ensure_ou(org, "ml101-students")
    created = accounts(org, ou_id)
    cfn = aws("cloudformation")
    cfn.create_stack_set(StackSetName="ml101-labs", TemplateBody=TEMPLATE, PermissionModel="SERVICE_MANAGED",
                         AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
                         Capabilities=["CAPABILITY_NAMED_IAM"])
    cfn.create_stack_instances(StackSetName="ml101-labs", DeploymentTargets={"OrganizationalUnitIds": [ou_id]},
                               Regions=["us-east-1"])
    states = stack_instance_states(cfn, "ml101-labs")
    assert states == {account: "CURRENT (SUCCEEDED)" for account in created.values()}


def test_no_stack_set_means_no_instances(aws: Any) -> None:
    assert stack_instance_states(aws("cloudformation"), "ml101-labs") == {}


def test_account_reports_its_worst_region(monkeypatch: pytest.MonkeyPatch, aws: Any) -> None:
    cfn = aws("cloudformation")
    pages = [{"Summaries": [
        {"Account": "210000000001", "Region": "us-east-1", "Status": "CURRENT",
         "StackInstanceStatus": {"DetailedStatus": "SUCCEEDED"}},
        {"Account": "210000000001", "Region": "eu-west-1", "Status": "OUTDATED",
         "StackInstanceStatus": {"DetailedStatus": "RUNNING"}},
    ]}, {"Summaries": [{"Account": "210000000002", "Region": "us-east-1", "Status": "INOPERABLE"}]}]
    monkeypatch.setattr(cfn, "get_paginator", lambda name: type("P", (), {"paginate": lambda self, **kw: pages})())
    assert stack_instance_states(cfn, "ml101-labs") == {"210000000001": "OUTDATED (RUNNING)",
                                                        "210000000002": "INOPERABLE"}


def test_remove_stack_instances_targets_the_ou(aws: Any, org: Any) -> None:
    """moto accepts the request but deletes only listed Accounts, so the instances stay there; the request is checked."""
    ou_id = ensure_ou(org, "ml101-students")
    accounts(org, ou_id)
    cfn = aws("cloudformation")
    cfn.create_stack_set(StackSetName="ml101-labs", TemplateBody=TEMPLATE, PermissionModel="SERVICE_MANAGED")
    cfn.create_stack_instances(StackSetName="ml101-labs", DeploymentTargets={"OrganizationalUnitIds": [ou_id]},
                               Regions=["us-east-1"])
    sent: list[dict[str, Any]] = []
    cfn.meta.events.register("provide-client-params.cloudformation.DeleteStackInstances",
                             lambda params, **kwargs: sent.append(dict(params)))
    operation = remove_stack_instances(cfn, "ml101-labs", [ou_id], ["us-east-1"], max_concurrent_percentage=50,
                                       failure_tolerance_percentage=0)
    assert operation
    assert sent == [{"StackSetName": "ml101-labs", "DeploymentTargets": {"OrganizationalUnitIds": [ou_id]},
                     "Regions": ["us-east-1"], "RetainStacks": False, "CallAs": "SELF",
                     "OperationPreferences": {"MaxConcurrentPercentage": 50, "FailureTolerancePercentage": 0,
                                              "RegionConcurrencyType": "PARALLEL"}}]


def test_remove_without_stack_set_is_none(aws: Any) -> None:
    assert remove_stack_instances(aws("cloudformation"), "ml101-labs", ["ou-ab12-cd345678"], ["us-east-1"],
                                  max_concurrent_percentage=50, failure_tolerance_percentage=0) is None
