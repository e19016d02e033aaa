"""A deploy that CloudFormation refuses: labctl's last lines name the stack, the reason and the log file."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from course.config import to_toml
from labkit import cli
from labkit.emulator import Endpoint
from labkit.target import Target
from tests.conftest import make_config

pytestmark = pytest.mark.emulator


def test_a_failed_stack_is_named_with_its_reason_in_the_last_five_lines(
        target: Target, endpoint: Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = dataclasses.replace(make_config(course={"id": "fd101"}, students=["alice"]),
                                 expires=dt.date.today() + dt.timedelta(days=30))
    path = tmp_path / "course.toml"
    path.write_text(to_toml(config))
    # Someone made the student's IAM user by hand: CloudFormation cannot create it.
    target.clients("iam").create_user(UserName=config.names.student("alice").containers_user)
    monkeypatch.setattr(cli.emulator, "read_state", lambda: endpoint)
    assert cli.main(["--config", str(path), "deploy", "LabContainers"]) == 1
    captured = capsys.readouterr()
    last = (captured.out + captured.err).strip().splitlines()[-5:]
    assert any("fd101-LabContainers" in line and "already exists" in line.lower() for line in last), last
    assert any(line.startswith("labctl: the CDK CLI's full output: ") for line in last), last
    log = Path(last[-1].split(": ", 2)[-1])
    assert "fd101-LabContainers" in log.read_text()
    target.clients("iam").delete_user(UserName=config.names.student("alice").containers_user)
    target.clients("cloudformation").delete_stack(StackName="fd101-LabContainers")
