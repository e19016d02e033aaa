"""labkit tests share the lab scripts' in-process moto account, and run labctl against it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from labkit import cli
from course.config import LabConfig, to_toml
from labkit.target import Target
from tests.conftest import make_config
from tests.lab_scripts.conftest import aws, emulator_tags  # noqa: F401 - re-exported fixtures


@pytest.fixture
def course(tmp_path: Path) -> tuple[LabConfig, Path]:
    """A course file whose expiry moves with the real date (labctl validates against today)."""
    config = dataclasses.replace(make_config(), expires=dt.date.today() + dt.timedelta(days=30))
    path = tmp_path / "course.toml"
    path.write_text(to_toml(config))
    return config, path


@pytest.fixture
def target(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Target:
    """labctl's target is the in-process moto account."""
    moto = Target("moto", aws, {}, True, wait_delay=0)
    monkeypatch.setattr(cli, "_target", lambda args, config: moto)
    return moto
