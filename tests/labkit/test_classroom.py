"""Classroom provisioning under in-process moto: capacity, plan, cost, status and handouts."""

from __future__ import annotations

import configparser
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from lab_scripts.cost import PriceTable
from lab_scripts.quotas import Capacity
from labkit.ops import handouts as handout_ops
from labkit.ops import provision as provision_ops
from labkit.ops import status as status_ops
from labkit.ops.errors import RefusedError as ClassroomError
from course.config import LabConfig, load_config, parse_config
from labkit.target import Target
from tests.conftest import ROOT, TODAY, course_raw, make_config
from tests.lab_scripts.conftest import create_lab_stack

COURSE_TAG = [{"Key": "labkit:course", "Value": "ml101"}]


def roster_config(roster: Path, **classroom_settings: str) -> LabConfig:
    """A course whose students come from `roster` instead of a `students` list."""
    raw = course_raw(classroom={"roster": str(roster), **classroom_settings})
    del raw["students"]
    return parse_config(raw, source="test.toml", today=TODAY)


def deploy_students(target: Target, templates: dict[str, Template], labs: tuple[str, ...]) -> None:
    """The stacks of `labs` as the CDK CLI deploys them, for alice and bob (make_config's students)."""
    for construct_id, template in templates.items():
        if construct_id.split("-")[0] in labs:
            name = f"ml101-{construct_id}"
            create_lab_stack(target.clients, name, template.to_json(), tags=COURSE_TAG)


def test_roster_course_file_gives_students_names_and_rows(tmp_path: Path) -> None:
    roster = tmp_path / "class.csv"
    roster.write_text("name;email\r\nJosé Núñez;jose@example.edu\r\nMaria Weiß;maria@example.edu\r\n",
                      encoding="utf-8-sig")
    course = tmp_path / "course.toml"
    text = (ROOT / "lab.toml").read_text().replace('roster = "examples/roster.csv"', 'roster = "class.csv"')
    course.write_text(text.replace("expires = 2027-03-31", f"expires = {TODAY + dt.timedelta(days=30)}"))
    config = load_config(course, today=TODAY)
    assert config.students == ("jose-nunez", "maria-weiss")
    assert config.student_row("maria-weiss").row == 3 and config.classroom.roster == roster.resolve()


def test_the_sample_roster_is_the_three_demo_students() -> None:
    config = load_config(ROOT / "lab.toml", allow_expired=True)
    assert config.students == ("alice", "bob", "chen")
    assert [row.name for row in config.roster] == ["Alice Martin", "Bob Okafor", "Chen Wei"]


def test_capacity_refusal_names_the_first_student_that_does_not_fit(
    target: Target, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,email\n" + "".join(f"s{i},Student {i},s{i}@example.edu\n" for i in range(5)))
    config = roster_config(roster)
    monkeypatch.setattr(provision_ops, "account_capacity", lambda clients, **kw: [
        Capacity("SageMaker ml.t3.medium notebook instances (quota 3, 0 in use)", 3),
        Capacity("G instance vCPUs (quota unreadable)", None)])
    with pytest.raises(ClassroomError) as refused:
        provision_ops.check_capacity(config, target)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{roster.resolve()}: row 5: id 's3' does not fit the account: SageMaker ml.t3.medium")
    assert "account-per-student mode" in message and "quota increase" in message
    assert target.clients("cloudformation").list_stacks()["StackSummaries"] == []


def test_capacity_reads_the_account(target: Target) -> None:
    capacities = {c.description.split(" (")[0]: c.students for c in provision_ops.check_capacity(make_config(), target)}
    assert capacities["CloudFormation stacks"] == 1000  # default quota 2000, two stacks per student
    assert capacities["IAM users"] == 5000
    assert capacities["SageMaker ml.t3.medium notebook instances"] is None  # moto has no SageMaker quotas


def test_plan_lists_every_stack_with_its_resources(target: Target, templates: dict[str, Template], tmp_path: Path,
                                                   config: LabConfig) -> None:
    for construct_id, template in templates.items():
        (tmp_path / f"{construct_id}.template.json").write_text(json.dumps(template.to_json()))
    rows = {row.stack_name: row for row in provision_ops.plan(config, target, tmp_path).stacks}
    assert list(rows) == [unit.stack_name for unit in config.stacks()]
    alice = rows["ml101-LabSageMaker-alice"]
    assert (alice.student, alice.resources) == ("alice", 6) and "1 NotebookInstance" in alice.types
    assert rows["ml101-LabDLAMI"].student == "(class)"


def test_cost_covers_the_course_until_it_expires(config: LabConfig) -> None:
    result = provision_ops.class_cost(config, PriceTable.bundled(), today=config.expires - dt.timedelta(days=14))
    assert result.students == 2 and result.weeks == 2
    assert 0 < result.with_idle_stop_usd < result.without_idle_stop_usd


def test_status_shows_each_students_environments(target: Target, templates: dict[str, Template],
                                                 config: LabConfig) -> None:
    deploy_students(target, templates, ("LabSageMaker", "LabContainers"))
    rows = {row.student: row for row in status_ops.status(target, config)}
    assert set(rows) == {"alice", "bob"}
    assert rows["alice"].notebook_state == "InService" and rows["alice"].instance_state == "not deployed"
    assert rows["bob"].access_keys == "none"


def test_handouts_are_private_and_never_reissue_a_key(target: Target, templates: dict[str, Template],
                                                      config: LabConfig, tmp_path: Path) -> None:
    deploy_students(target, templates, ("LabSageMaker", "LabContainers"))
    made = handout_ops.handouts(target, config, ["alice", "bob"], tmp_path / "out")
    for handout in made:
        assert handout.path.stat().st_mode & 0o777 == 0o600
        assert (handout.path.parent / f"{handout.student}.credentials").stat().st_mode & 0o777 == 0o600
        assert handout.credentials.startswith("issued AKIA...")
    text = (tmp_path / "out" / "alice.md").read_text()
    assert "create-presigned-notebook-instance-url" in text and "ml101-alice-123456789012-us-east-1" in text
    profile = configparser.ConfigParser()
    profile.read(tmp_path / "out" / "alice.credentials")
    secret = profile["ml101"]["aws_secret_access_key"]
    assert secret not in text and secret not in repr(made)
    again, = handout_ops.handouts(target, config, ["alice"], tmp_path / "again")
    assert again.credentials.startswith("already holds") and not (tmp_path / "again" / "alice.credentials").exists()


@pytest.mark.parametrize(("students", "message"), [
    (["mallory"], "student 'mallory' is not in the course"),
    (["alice"], "alice has no IAM user yet: `labctl provision` creates it"),
])
def test_handouts_refuse_unknown_or_unprovisioned_students(target: Target, config: LabConfig, tmp_path: Path,
                                                           students: list[str], message: str) -> None:
    with pytest.raises(ClassroomError, match=message.replace("(", r"\(").replace(")", r"\)")):
        handout_ops.handouts(target, config, students, tmp_path)
    assert not tmp_path.joinpath("alice.md").exists()


def test_account_per_student_course_needs_no_account_capacity(target: Target, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("name,email\nAda Lovelace,ada@example.edu\n")
    config = roster_config(roster, mode="account-per-student", organizational_unit="ou-ab12-cdef3456")
    assert config.classroom.per_account and config.students == ("ada-lovelace",)
    assert provision_ops.check_capacity(config, target) == []


def test_account_per_student_refuses_a_zone_name(tmp_path: Path) -> None:
    """Zone names map to different physical zones in each account, so one name cannot fit every student's."""
    from course.config import ConfigError

    roster = tmp_path / "roster.csv"
    roster.write_text("name,email\nAda Lovelace,ada@example.edu\n")
    raw = course_raw(classroom={"roster": str(roster), "mode": "account-per-student",
                                "organizational_unit": "ou-ab12-cdef3456"}, dlami={"availability_zone": "us-east-1b"})
    del raw["students"]
    with pytest.raises(ConfigError, match=r"^test.toml: dlami.availability_zone: zone names map"):
        parse_config(raw, source="test.toml", today=TODAY)


def test_plan_of_an_account_per_student_course_shows_what_each_account_gets(target: Target, per_account_app: Any,
                                                                            tmp_path: Path) -> None:
    from tests.conftest import per_account_config

    assembly = per_account_app.synth().directory
    rows = {row.stack_name: row for row in provision_ops.plan(per_account_config(tmp_path, 3), target, Path(assembly)).stacks}
    assert list(rows) == ["ml101-LabClassroom", "ml101-LabRekognition", "ml101-LabGuard", "ml101-LabStudent"]
    assert rows["ml101-LabClassroom"].types == "1 StackSet"
    each = rows["ml101-LabStudent"]
    assert each.student == "(each account)" and "1 NotebookInstance" in each.types and "1 Instance" in each.types
