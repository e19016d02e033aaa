"""Account-per-student mode under moto: status, handouts and teardown. The stack set deploys the real student
template into member accounts (moto runs it there), and the drain archives each student's bucket in their own
account before anything is deleted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from aws_cdk import App

from lab_scripts import buckets
from lab_scripts.organization import account_clients, ensure_ou, ensure_student_accounts
from labkit.emulator_stackset import patch_stack_sets
from labkit.events import describe
from labkit.ops.errors import RefusedError
from labkit.ops.teardown import DRAIN, DestroyResult, Drain
from labkit.target import Target
from course.naming import PLACEHOLDER_STUDENT, CourseNames
from tests.conftest import per_account_config


@pytest.fixture
def student_accounts(aws: Any, per_account_app: App, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, str]]:
    """Two students' accounts in the class OU, each with LabStudent deployed by a service-managed stack set (the
    emulator's StackSet resource: moto's own stack sets keep the members' stacks out of their accounts)."""
    from stacks.classroom_stack import LabClassroomStack

    patch_stack_sets(monkeypatch.setattr)
    org = aws("organizations")
    org.create_organization(FeatureSet="ALL")
    ou = ensure_ou(org, "ml101-students")
    accounts = ensure_student_accounts(org, ou, "ml101", [("ada", "ada@example.edu", None),
                                                          ("alan", "alan@example.edu", None)], echo=lambda _: None)
    classroom = next(c for c in per_account_app.node.children if isinstance(c, LabClassroomStack))
    template = json.loads(classroom.student_template.read_text())
    # The public DLAMI parameter exists in AWS (and the embedded emulator seeds it); in-process moto has none.
    template["Parameters"]["DlamiImageId"] = {"Type": "String", "Default": "ami-0123456789abcdef0"}
    cfn = aws("cloudformation")
    cfn.create_stack(StackName="ml101-LabClassroom", TemplateBody=json.dumps({"Resources": {"StackSet": {
        "Type": "AWS::CloudFormation::StackSet", "Properties": {
            "StackSetName": "ml101-LabStudent", "TemplateBody": json.dumps(template),
            "PermissionModel": "SERVICE_MANAGED", "Capabilities": ["CAPABILITY_NAMED_IAM"],
            "AutoDeployment": {"Enabled": True, "RetainStacksOnAccountRemoval": False},
            "StackInstancesGroup": [{"DeploymentTargets": {"OrganizationalUnitIds": [ou]},
                                     "Regions": ["us-east-1"]}]}}}}))
    return cfn, accounts


def test_each_students_bucket_is_archived_in_their_own_account(
    aws: Any, student_accounts: tuple[Any, dict[str, str]], tmp_path: Path
) -> None:
    _, accounts = student_accounts
    config = per_account_config(tmp_path, 2)
    written = {}
    for student, account in accounts.items():
        clients = account_clients(aws("sts"), account, region="us-east-1")
        bucket = CourseNames("ml101", account, "us-east-1").student(PLACEHOLDER_STUDENT).bucket
        clients("s3").put_object(Bucket=bucket, Key="work/model.py", Body=f"# {student}\n".encode())
        written[bucket] = f"# {student}\n"
    lines: list[str] = []
    result = DestroyResult()
    ctx = Drain(Target("moto", aws, {}, True, wait_delay=0), tmp_path / "archive", lambda event: lines.append(describe(event)), result, config)
    DRAIN["AWS::CloudFormation::StackSet"](ctx, "ml101-LabStudent:0a1b2c3d")
    assert set(result.student_accounts) == set(accounts.values())
    for bucket, body in written.items():
        manifest = json.loads((tmp_path / "archive" / bucket / "manifest.json").read_text())
        assert [entry["key"] for entry in manifest["objects"]] == ["work/model.py"]
        assert buckets.read_archived(tmp_path / "archive" / bucket / "manifest.json", "work/model.py") == body.encode()
    for account in accounts.values():
        clients = result.student_accounts[account]
        bucket = CourseNames("ml101", account, "us-east-1").student(PLACEHOLDER_STUDENT).bucket
        assert clients("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
        # Frozen before the archive: the student administers their own account, so a deny in the bucket policy.
        with pytest.raises(ClientError, match="AccessDenied|Forbidden"):
            clients("s3").put_object(Bucket=bucket, Key="late.txt", Body=b"too late")
    assert any("2 student accounts to archive" in line for line in lines)


def test_the_class_account_never_sees_the_students_buckets(aws: Any, student_accounts: tuple[Any, dict[str, str]]
                                                           ) -> None:
    """Each bucket lives in its student's account (named by that account), not in the class account."""
    _, accounts = student_accounts
    own = {bucket["Name"] for bucket in aws("s3").list_buckets()["Buckets"]}
    for account in accounts.values():
        assert CourseNames("ml101", account, "us-east-1").student(PLACEHOLDER_STUDENT).bucket not in own


def ada_and_alan(tmp_path: Path) -> Any:
    from course.config import parse_config
    from tests.conftest import OU, TODAY, course_raw

    roster = tmp_path / "class.csv"
    roster.write_text("name,email\nAda,ada@example.edu\nAlan,alan@example.edu\nGrace,grace@example.edu\n")
    raw = course_raw(classroom={"mode": "account-per-student", "organizational_unit": OU, "roster": str(roster)})
    del raw["students"]
    return parse_config(raw, source="test.toml", today=TODAY)


def test_status_shows_each_students_account_and_their_labs(
    aws: Any, student_accounts: tuple[Any, dict[str, str]], tmp_path: Path
) -> None:
    from labkit.ops import handouts as handout_ops, status as status_ops

    _, accounts = student_accounts
    rows = {row.student: row for row in status_ops.account_status(Target("moto", aws, {}, True), ada_and_alan(tmp_path))}
    assert rows["ada"].account == accounts["ada"] and rows["ada"].environment == "CURRENT (SUCCEEDED)"
    # Read in ada's own account, from the stack set's stack there.
    assert rows["ada"].bucket == CourseNames("ml101", accounts["ada"], "us-east-1").student(PLACEHOLDER_STUDENT).bucket
    assert (rows["ada"].notebook_state, rows["ada"].instance_state) == ("InService", "running")
    assert (rows["grace"].account, rows["grace"].environment) == ("-", "no account yet")


def test_handouts_point_each_student_to_their_own_account(
    aws: Any, student_accounts: tuple[Any, dict[str, str]], tmp_path: Path
) -> None:
    from labkit.ops import handouts as handout_ops, status as status_ops

    _, accounts = student_accounts
    target, config = Target("moto", aws, {}, True), ada_and_alan(tmp_path)
    made, = handout_ops.handouts(target, config, ["alan"], tmp_path / "out")
    text = made.path.read_text()
    assert f"https://{accounts['alan']}.signin.aws.amazon.com/console" in text
    assert made.path.stat().st_mode & 0o777 == 0o600 and not (tmp_path / "out" / "alan.credentials").exists()
    with pytest.raises(RefusedError, match="grace has no account yet"):
        handout_ops.handouts(target, config, ["grace"], tmp_path / "out")


def test_the_teardown_plan_drains_each_students_account_and_stops_nothing_in_the_class_account(
    aws: Any, student_accounts: tuple[Any, dict[str, str]], tmp_path: Path
) -> None:
    from labkit.ops.teardown import teardown_plan

    plan = teardown_plan(Target("moto", aws, {}, True), per_account_config(tmp_path, 2), tmp_path / "archive")
    assert plan.steps[0].startswith("each student's account (through OrganizationAccountAccessRole): stop the "
                                    "notebook and GPU instance, freeze, archive and empty the bucket")
    assert not [step for step in plan.steps if step.startswith(("stop every", "pause the guard"))]
