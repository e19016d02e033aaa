"""Bad command lines and bad classroom input: one line on stderr naming what is wrong, exit 2, nothing created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab_scripts.quotas import Capacity
from labkit import cli
from labkit.ops import provision as provision_ops
from course.config import LabConfig
from labkit.target import Target


def run(path: Path, *argv: str) -> int:
    return cli.main(["--config", str(path), *argv])


def nothing_created(target: Target, tmp_path: Path) -> None:
    assert target.clients("cloudformation").list_stacks()["StackSummaries"] == []
    assert target.clients("iam").list_users()["Users"] == []
    assert not [p for p in tmp_path.rglob("*") if p.suffix in {".md", ".credentials"}]


FLAGS: list[tuple[list[str], str]] = [
    (["handout", "Alice Q. Nobody"], "no student 'Alice Q. Nobody' in the course"),
    (["handout", "mallory"], "no student 'mallory' in the course"),
    (["handout", "alice"], "alice has no IAM user yet: `labctl provision` creates it"),
    (["cost", "--pricing"], "--pricing asks the AWS Price List API: add --aws"),
    (["notebook", "start", "mallory"], "no student 'mallory' in the course"),
    (["gpu", "connect", "mallory"], "no student 'mallory' in the course"),
    (["keys", "issue", "mallory"], "no student 'mallory' in the course"),
    (["guard", "run", "--at", "yesterday"], "--at 'yesterday' is not a date and time"),
    (["teardown", "--yes", "--confirm", "ml102"], "--confirm 'ml102' is not this course's id"),
    (["deploy", "LabFoo"], "unknown lab 'LabFoo'"),
    (["destroy", "LabSagemaker", "--yes"], "unknown lab 'LabSagemaker'"),
    (["provision", "--dryrun"], "unrecognized arguments: --dryrun"),
    (["status", "--json", "alice"], "unrecognized arguments: alice"),
    (["handout", "--out"], "argument --out: expected one argument"),
    (["keys", "rotate"], "argument action: invalid choice: 'rotate'"),
    (["provison"], "invalid choice: 'provison'"),
]


@pytest.mark.parametrize(("argv", "message"), FLAGS, ids=[" ".join(argv) for argv, _ in FLAGS])
def test_bad_flags_are_one_line_and_change_nothing(
    target: Target, course: tuple[LabConfig, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    argv: list[str], message: str,
) -> None:
    try:
        code = run(course[1], *argv)
    except SystemExit as exit_:  # argparse refuses before labctl runs
        code = int(exit_.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    nothing_created(target, tmp_path)


def roster_course(tmp_path: Path, course: tuple[LabConfig, Path], roster: str) -> Path:
    (tmp_path / "class.csv").write_text(roster, encoding="utf-8")
    text = course[1].read_text()
    start = text.index("students = ")
    text = text[:start] + text[text.index("\n", start) + 1:]
    path = tmp_path / "roster-course.toml"
    path.write_text(text.replace("[classroom]\n", '[classroom]\nroster = "class.csv"\n'))
    return path


ROSTERS: list[tuple[str, str]] = [
    ("name,email\nAda,ada@example.edu\nAda,ada2@example.edu\n", "class.csv: row 3: id: 'ada' is also row 2"),
    ("name,email\nAda,ada.example.edu\n", "class.csv: row 2: email:"),
    ("name\nAda\n", "class.csv: row 1: email: no email column"),
    ("id,name,email\nAda!,Ada,ada@example.edu\n", "class.csv: row 2: id:"),
    ("name,email\n李雷,li@example.edu\n", "class.csv: row 2: name:"),
    ("id,name,email\nrekognition,Rex,rex@example.edu\n", "row 2: id: 'rekognition' is reserved"),
]


@pytest.mark.parametrize(("roster", "message"), ROSTERS)
def test_bad_roster_row_stops_provision_before_anything(
    target: Target, course: tuple[LabConfig, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    roster: str, message: str,
) -> None:
    path = roster_course(tmp_path, course, roster)
    assert run(path, "provision") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    nothing_created(target, tmp_path)


def test_a_class_larger_than_the_account_stops_provision(
    target: Target, course: tuple[LabConfig, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = roster_course(tmp_path, course, "name,email\nAda Lovelace,ada@example.edu\nAlan Turing,alan@example.edu\n")
    monkeypatch.setattr(provision_ops, "account_capacity", lambda clients, **kwargs: [
        Capacity("G instance vCPUs (quota 4, 4 per g4dn.xlarge)", 1)])
    assert run(path, "provision", "--dry-run") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "class.csv: row 3: id 'alan-turing' does not fit the account: G instance vCPUs (quota 4" in err
    nothing_created(target, tmp_path)


def test_a_missing_course_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], aws: Any) -> None:
    assert cli.main(["--config", str(tmp_path / "nope.toml"), "provision"]) == 2
    assert capsys.readouterr().err == f"labctl: error: {tmp_path / 'nope.toml'}: file not found\n"


@pytest.mark.parametrize(("course_file", "expected"), [
    ("examples/solo.toml", "mylab: the account-per-student demo needs an account-per-student course"),
    ("examples/nowhere.toml", "nowhere.toml"),
])
def test_the_account_per_student_demo_refuses_another_course_in_one_line(
        course_file: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before any emulator starts: the demo needs the account-per-student example or one like it."""
    from labkit import ROOT

    assert cli.main(["--config", str(ROOT / course_file), "demo", "--mode", "account-per-student"]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
