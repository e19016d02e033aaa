"""labctl's output: external strings printed as text (never markup), the live view's plain lines without a
terminal, the CDK CLI's output in the log file, and a failure named with CloudFormation's reason."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template
from rich.console import Console

from course.config import LabConfig, parse_config, to_toml
from labkit import cli, render
from labkit.events import (BucketArchived, KeysDeactivated, MachineStopped, PhaseFinished, PhaseStarted,
                           StackFailed, StackFinished, StackStarted, ToolOutput)
from labkit.ops import provision as provision_ops
from labkit.ops.errors import OperationError
from labkit.ops.stacks import run_stacks
from labkit.render import LiveView, count
from labkit.target import Target
from tests.conftest import TODAY, course_raw
from tests.labkit.test_classroom import deploy_students

# Names a roster may hold that rich would read as markup (or an emoji code) if printed as a string.
MARKUP_NAMES = ("Bob [/x] Tables", "[bold red]Eve[/bold red]", "Mallory :smile: [link=http://x]y[/link]")


def plain_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, markup=False, emoji=False, highlight=False, width=200), buffer


def test_without_a_terminal_each_finished_stack_is_one_line_and_tool_output_goes_to_the_log(tmp_path: Path) -> None:
    out, buffer = plain_console()
    with LiveView("provision", out, log_root=tmp_path) as view:
        view(PhaseStarted("deploying stacks", 2))
        for stack in ("ml101-LabDLAMI", "ml101-LabSageMaker-alice"):
            view(StackStarted(stack, "deploy"))
            view(ToolOutput(f"{stack} | CREATE_IN_PROGRESS | AWS::CloudFormation::Stack"))
            view(StackFinished(stack, "deploy", 1.0))
        view(PhaseFinished("deploying stacks"))
    lines = buffer.getvalue().splitlines()
    assert lines[0] == f"full output of the CDK CLI: {view.log_path}"
    assert [line.split(" (")[0] for line in lines[1:3]] == ["ml101-LabDLAMI: deployed",
                                                             "ml101-LabSageMaker-alice: deployed"]
    assert lines[3].startswith("deploying stacks: 2 done in ") and len(lines) == 4
    assert "CREATE_IN_PROGRESS" in view.log_path.read_text() and "CREATE_IN_PROGRESS" not in buffer.getvalue()


def test_verbose_streams_the_tool_output(tmp_path: Path) -> None:
    out, buffer = plain_console()
    with LiveView("deploy", out, verbose=True, log_root=tmp_path) as view:
        view(ToolOutput("ml101-LabDLAMI | CREATE_IN_PROGRESS [bold]"))
    assert "CREATE_IN_PROGRESS [bold]" in buffer.getvalue()


def test_machines_and_keys_are_counted_in_the_phase_summary_not_listed(tmp_path: Path) -> None:
    out, buffer = plain_console()
    with LiveView("teardown", out, log_root=tmp_path) as view:
        view(PhaseStarted("archiving", 1))
        view(MachineStopped("notebook", "nb-alice", "Stopped"))
        view(BucketArchived("ml101-alice-bucket", 3, 2048, "/archive"))
        view(PhaseFinished("archiving"))
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "s3://ml101-alice-bucket: archived 3 objects, 2.0 KB -> /archive"
    assert lines[1].startswith("archiving: 1 done (3 objects, 2.0 KB archived); 1 notebook stopped in ")


def test_counts_read_as_english_one_and_many(tmp_path: Path) -> None:
    out, buffer = plain_console()
    with LiveView("teardown", out, log_root=tmp_path) as view:
        view(PhaseStarted("archiving", 2))
        view(MachineStopped("notebook", "nb-alice", "Stopped"))
        view(MachineStopped("notebook", "nb-bob", "Stopped"))
        view(MachineStopped("instance", "i-0alice", "stopped"))
        view(KeysDeactivated("ml101-alice-dlc", 1))
        view(BucketArchived("ml101-alice-bucket", 1, 5, "/archive"))
        view(BucketArchived("ml101-bob-bucket", 0, 0, "/archive"))
        view(PhaseFinished("archiving"))
    lines = buffer.getvalue().splitlines()
    assert lines[:2] == ["s3://ml101-alice-bucket: archived 1 object, 5 B -> /archive",
                         "s3://ml101-bob-bucket: archived 0 objects, 0 B -> /archive"]
    assert lines[2].startswith("archiving: 2 done (1 object, 5 B archived); 1 instance stopped, 2 notebooks stopped, "
                               "keys of 1 user deactivated in ")
    assert [count(n, "resource") for n in (0, 1, 2)] == ["0 resources", "1 resource", "2 resources"]


def test_a_failure_names_the_stack_and_cloudformations_reason(tmp_path: Path) -> None:
    out, buffer = plain_console()
    with LiveView("provision", out, log_root=tmp_path) as view:
        view(StackStarted("ml101-LabDLAMI-alice", "deploy"))
        view(StackFailed("ml101-LabDLAMI-alice", "deploy", "Workstation (AWS::EC2::Instance): Unsupported instance"))
    assert "failed: ml101-LabDLAMI-alice (deploy): Workstation (AWS::EC2::Instance): Unsupported" in buffer.getvalue()


def test_run_stacks_reports_the_first_failed_resource_event_not_the_last_cli_line(
        monkeypatch: pytest.MonkeyPatch, config: LabConfig, tmp_path: Path) -> None:
    """A deploy that fails: the CDK CLI's own last line says little; CloudFormation's first FAILED event says why."""
    events = [
        {"ResourceStatus": "ROLLBACK_IN_PROGRESS", "ResourceStatusReason": "The following resource(s) failed",
         "Timestamp": dt.datetime(2026, 1, 1, 10, 2), "LogicalResourceId": "ml101-LabDLAMI"},
        {"ResourceStatus": "CREATE_FAILED", "ResourceStatusReason": "Resource creation cancelled",
         "Timestamp": dt.datetime(2026, 1, 1, 10, 1, 30), "LogicalResourceId": "Vpc", "ResourceType": "AWS::EC2::VPC"},
        {"ResourceStatus": "CREATE_FAILED", "ResourceStatusReason": "Unsupported instance type p9.huge",
         "Timestamp": dt.datetime(2026, 1, 1, 10, 1), "LogicalResourceId": "Workstation",
         "ResourceType": "AWS::EC2::Instance"},
    ]

    class Paginator:
        def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
            return [{"StackEvents": events}]

    target = Target("moto", lambda service: type("C", (), {"get_paginator": lambda self, name: Paginator()})(),
                    {}, True, wait_delay=0)

    def failing_cdk(args: list[str], *, echo: Any, **kwargs: Any) -> None:
        echo("LabDLAMI (ml101-LabDLAMI): deploying... [1/1]")
        echo("ml101-LabDLAMI | 3/4 | CREATE_FAILED | AWS::EC2::Instance | Workstation")
        from labkit.cdk import CdkError
        raise CdkError("cdk deploy failed (exit 1): ❌  LabDLAMI failed: _ToolkitError: The stack failed")

    monkeypatch.setattr("labkit.ops.stacks.run_cdk", failing_cdk)
    seen: list[Any] = []
    unit = next(unit for unit in config.stacks() if unit.stack_name == "ml101-LabDLAMI")
    with pytest.raises(OperationError) as raised:
        run_stacks("deploy", config, tmp_path / "course.toml", target, [unit], seen.append)
    assert str(raised.value) == ("deploy failed: ml101-LabDLAMI: Workstation (AWS::EC2::Instance): Unsupported "
                                 "instance type p9.huge")
    assert [type(event) for event in seen if not isinstance(event, ToolOutput)] == [StackStarted, StackFailed]


def markup_config(tmp_path: Path) -> LabConfig:
    roster = tmp_path / "class.csv"
    roster.write_text("name,email,id\n" + "".join(f"{name},s{i}@example.edu,{student}\n" for i, (name, student)
                                                 in enumerate(zip(MARKUP_NAMES[:2], ("alice", "bob")))))
    raw = course_raw(classroom={"roster": str(roster)})
    del raw["students"]
    return dataclasses.replace(parse_config(raw, source="test.toml", today=TODAY),
                               expires=dt.date.today() + dt.timedelta(days=30))


def test_markup_like_names_print_as_text_through_status_handout_cost_plan_and_teardown(
        target: Target, templates: dict[str, Template], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = markup_config(tmp_path)
    path = tmp_path / "course.toml"
    path.write_text(to_toml(config))
    deploy_students(target, templates, ("LabSageMaker", "LabContainers"))
    for argv in (["status"], ["handout", "--out", str(tmp_path / "handouts")], ["cost"], ["teardown"]):
        assert cli.main(["--config", str(path), *argv]) == 0, argv
    out = capsys.readouterr().out
    assert "Bob [/x] Tables" in out and "[bold red]Eve[/bold red]" in out  # shown as typed, status table
    html = (tmp_path / "handouts" / "bob.html").read_text()
    assert "[bold red]Eve[/bold red]" in html and "<s" not in html.replace("<style", "")
    page = (tmp_path / "handouts" / "alice.html").read_text()
    assert "Bob [/x] Tables &lt;s0@example.edu&gt;" in page  # HTML-escaped, never markup
    for construct_id, template in templates.items():
        (tmp_path / f"{construct_id}.template.json").write_text(json.dumps(template.to_json()))
    plan = provision_ops.plan(config, target, tmp_path)
    out_console, buffer = plain_console()
    render.print_plan(config, plan, out_console)
    assert "alice" in buffer.getvalue() and "bob" in buffer.getvalue()


def test_status_csv_is_a_spreadsheet_row_per_student(target: Target, templates: dict[str, Template], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = markup_config(tmp_path)
    path = tmp_path / "course.toml"
    path.write_text(to_toml(config))
    deploy_students(target, templates, ("LabSageMaker",))
    assert cli.main(["--config", str(path), "status", "--csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("student,name,notebook,notebook_state")
    assert rows[1].startswith("alice,Bob [/x] Tables,") and "InService" in rows[1] and len(rows) == 3
