"""After the course's expiry date: nothing deploys (one line naming the field), everything that looks, stops or
takes down still works, and so does starting an emulator."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from course.config import to_toml
from labkit import cli
from labkit.emulator import Endpoint
from labkit.target import Target
from tests.conftest import make_config


@pytest.fixture
def ended(tmp_path: Path) -> Path:
    path = tmp_path / "course.toml"
    path.write_text(to_toml(dataclasses.replace(make_config(), expires=dt.date.today() - dt.timedelta(days=1))))
    return path


def test_provision_refuses_in_one_line_and_creates_nothing(target: Target, ended: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(ended), "provision"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "course.expires:" in err and "is in the past" in err
    assert target.clients("cloudformation").list_stacks()["StackSummaries"] == []


@pytest.mark.parametrize("argv", [["status"], ["audit"], ["teardown"], ["cost"], ["stop-all"]])
def test_what_looks_stops_or_takes_down_still_works(target: Target, ended: Path, argv: list[str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(ended), *argv]) == 0
    assert "is in the past" not in capsys.readouterr().err


def test_an_emulator_still_starts(ended: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    started: list[Any] = []

    def start_detached(region: str, port: int | None, **options: Any) -> Endpoint:
        started.append(region)
        return Endpoint(4566, region)

    monkeypatch.setattr(cli.emulator, "start_detached", start_detached)
    assert cli.main(["--config", str(ended), "local", "up"]) == 0
    assert started == ["us-east-1"] and "emulator running at http://localhost:4566" in capsys.readouterr().out
