"""`labctl keys` against LabContainers deployed in moto: private files, no secret on the terminal, one-line errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import stat
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from labkit import cli
from course.config import LabConfig, to_toml
from labkit.target import Target
from tests.lab_scripts.conftest import create_lab_stack


@pytest.fixture
def deployed(target: Target, templates: dict[str, Template]) -> Target:
    create_lab_stack(target.clients, "ml101-LabContainers", templates["LabContainers"].to_json())
    return target


def labctl(path: Path, *argv: str) -> int:
    return cli.main(["--config", str(path), "keys", *argv])


def test_issue_writes_private_files_and_prints_no_secret(deployed: Target, course: tuple[LabConfig, Path],
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, path = course
    out_dir = tmp_path / "keys"
    assert labctl(path, "issue", "--out", str(out_dir)) == 0
    printed = capsys.readouterr()
    files = sorted(out_dir.iterdir())
    assert [f.name for f in files] == ["alice.credentials", "bob.credentials"]
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        secret = next(line.split(" = ")[1] for line in file.read_text().splitlines() if "secret" in line)
        assert secret not in printed.out + printed.err
    assert printed.out.count("(mode 0600)") == 2 and "AWS profile [ml101]" in printed.out


def test_csv_for_one_student_then_refuse_a_second_key(deployed: Target, course: tuple[LabConfig, Path],
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, path = course
    assert labctl(path, "issue", "alice", "--csv", "--out", str(tmp_path)) == 0
    assert (tmp_path / "alice.csv").read_text().startswith("User name,Access key ID,Secret access key,Region\n")
    assert not (tmp_path / "bob.csv").exists()
    capsys.readouterr()
    assert labctl(path, "issue", "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err == ("labctl: error: alice already holds an access key (ml101-alice-dlc; its secret cannot be read "
                   "again): `labctl keys delete alice` first\n")
    assert not (tmp_path / "bob.credentials").exists()  # nobody got a key when one student was refused


def test_list_deactivate_delete(deployed: Target, course: tuple[LabConfig, Path], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    _, path = course
    keys = tmp_path / "keys"
    assert labctl(path, "issue", "--out", str(keys)) == 0
    capsys.readouterr()
    assert labctl(path, "issue", "--out", str(keys)) == 2
    assert capsys.readouterr().err == (
        "labctl: error: alice, bob already hold access keys (their secrets cannot be read again): `labctl keys delete "
        "STUDENT` first for each, or `labctl keys delete` for the class\n")
    assert labctl(path, "deactivate", "bob") == 0
    capsys.readouterr()
    assert labctl(path, "list") == 0
    listed = capsys.readouterr().out
    assert "alice: ml101-alice-dlc: AKIA..." in listed and "Active" in listed and "Inactive" in listed
    assert labctl(path, "delete", "--out", str(keys)) == 0
    assert "deleted 1 access key(s) of ml101-bob-dlc, 1 local file(s)" in capsys.readouterr().out
    assert list(keys.iterdir()) == []
    iam = deployed.clients("iam")
    assert iam.list_access_keys(UserName="ml101-alice-dlc")["AccessKeyMetadata"] == []


@pytest.mark.parametrize(("argv", "message"), [
    (["issue", "mallory"], "no student 'mallory' in the course"),
    (["delete", "Alice Q. Nobody"], "no student 'Alice Q. Nobody' in the course"),
])
def test_bad_student_is_one_line(deployed: Target, course: tuple[LabConfig, Path], argv: list[str], message: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert labctl(course[1], *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"labctl: error: {message}") and err.count("\n") == 1


def test_keys_need_the_lab_deployed(target: Target, course: tuple[LabConfig, Path],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert labctl(course[1], "issue") == 2
    assert capsys.readouterr().err == "labctl: error: LabContainers is not deployed (`labctl provision` deploys it)\n"


def test_after_the_course_keys_can_be_deleted_but_not_issued(deployed: Target, course: tuple[LabConfig, Path],
                                                            tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, path = course
    deployed.clients("iam").create_access_key(UserName="ml101-alice-dlc")
    path.write_text(to_toml(dataclasses.replace(config, expires=dt.date.today() - dt.timedelta(days=1))))
    assert labctl(path, "issue", "--out", str(tmp_path)) == 2
    assert "no new keys" in capsys.readouterr().err
    assert labctl(path, "delete", "alice", "--out", str(tmp_path)) == 0


def test_student_added_after_the_deploy_is_told_to_redeploy(deployed: Target, course: tuple[LabConfig, Path],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    config, path = course
    path.write_text(to_toml(dataclasses.replace(config, students=(*config.students, "carol"))))
    assert labctl(path, "issue", "carol") == 2
    assert "carol has no container user yet" in capsys.readouterr().err
