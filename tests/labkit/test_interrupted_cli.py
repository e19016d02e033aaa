"""A command cut short: Ctrl-C (one line that says what goes on without labctl and which command picks it up, exit
130), the emulator gone from under it, or an answer that is a web page instead of an AWS error."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from course.config import LabConfig
from labkit import cli
from labkit.emulator import Endpoint, free_port
from labkit.target import Target


def interrupted(*args: object) -> None:
    raise KeyboardInterrupt


def ctrl_c(path: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(["--config", str(path), *argv]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.rstrip("\n")


def test_a_teardown_names_the_command_that_continues_it_from_its_journal(
        target: Target, course: tuple[LabConfig, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "teardown", interrupted)
    assert ctrl_c(course[1], capsys, "teardown", "--yes", "--confirm", "ml101") == (
        "labctl: interrupted; `labctl teardown --yes --confirm ml101` continues it from where it stopped")


def test_a_provision_says_that_cloudformation_goes_on_and_a_rerun_deploys_the_rest(
        target: Target, course: tuple[LabConfig, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "prepare", interrupted)
    assert ctrl_c(course[1], capsys, "provision") == ("labctl: interrupted; CloudFormation finishes the stacks it "
                                                      "already started; `labctl provision` again deploys the rest")


def test_a_command_that_changes_nothing_is_just_interrupted(
        target: Target, course: tuple[LabConfig, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.COMMANDS, "status", interrupted)
    assert ctrl_c(course[1], capsys, "status") == "labctl: interrupted"


@pytest.mark.parametrize("command", ["status", "audit", "provision"])
def test_an_emulator_that_died_after_it_was_found_is_named_with_what_to_do(
        course: tuple[LabConfig, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        command: str) -> None:
    # Its state file still names it (a zombie not reaped yet, or killed while this command ran): nothing answers.
    gone = Endpoint(free_port(), "us-east-1")
    monkeypatch.setattr(cli.emulator, "read_state", lambda: gone)
    assert cli.main(["--config", str(course[1]), command]) == 1
    err = capsys.readouterr().err
    assert err == (f"labctl: the embedded emulator at {gone.url}/ stopped answering (its log: "
                   f"{cli.emulator.LOG_FILE}); `labctl local up` starts a new, empty one\n")


def test_a_web_page_instead_of_an_aws_error_is_named_in_one_line(
        target: Target, course: tuple[LabConfig, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # What botocore makes of an emulator's HTTP 500 (an action moto lacks answered with Werkzeug's error page).
    page = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>"

    def failing(*args: object) -> None:
        raise ClientError({"Error": {"Code": "500", "Message": page}}, "CreatePresignedNotebookInstanceUrl")

    monkeypatch.setitem(cli.COMMANDS, "status", failing)
    assert cli.main(["--config", str(course[1]), "status"]) == 1
    assert capsys.readouterr().err == (
        "labctl: AWS error: An error occurred (500) when calling the CreatePresignedNotebookInstanceUrl operation: the "
        f"endpoint answered with a web page, not an AWS error (the emulator's log: {cli.emulator.LOG_FILE})\n")
