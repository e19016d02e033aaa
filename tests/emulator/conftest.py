"""One embedded emulator per test session, and a course file whose expiry is relative to today."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from course.config import LabConfig, to_toml
from labkit.emulator import Emulator, Endpoint
from labkit.target import Target, emulator_target
from tests.conftest import make_config


@pytest.fixture(scope="session")
def endpoint() -> Iterator[Endpoint]:
    with Emulator("us-east-1") as running:
        yield running


@pytest.fixture(scope="session")
def target(endpoint: Endpoint) -> Target:
    # CloudFormation validation of the whole app is tested once (tests/stacks/test_synth_validation.py);
    # skipping it in every CDK CLI run here saves about 3 s each. cdk-nag still gates every synth.
    running = emulator_target(endpoint)
    return dataclasses.replace(running, env={**running.env, "CDK_VALIDATION": "false"})


@pytest.fixture(scope="session")
def course(tmp_path_factory: pytest.TempPathFactory) -> tuple[LabConfig, Path]:
    # The CDK app validates against the real date, so the file's expiry moves with it.
    config = dataclasses.replace(make_config(), expires=dt.date.today() + dt.timedelta(days=30))
    path = tmp_path_factory.mktemp("course") / "course.toml"
    path.write_text(to_toml(config))
    return config, path
