"""The README's CDK commands for a class (section "Classroom", "With the CDK CLI"), each run as typed: per lab,
the whole class with one pattern and one student by name, deploy and destroy."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from course.config import LabConfig, to_toml
from labkit.emulator import Emulator, Endpoint
from labkit.ops.stacks import ensure_bootstrapped
from labkit.target import Target, emulator_target
from tests.conftest import make_config
from tests.emulator.typed import cdk, destroy_all, live_stacks

pytestmark = pytest.mark.emulator
Class = tuple[Endpoint, Target, LabConfig, Path]
EMULATOR_EXPORTS = "--method=direct"


def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Class]:
    with Emulator("us-east-1") as endpoint:
        config = dataclasses.replace(make_config(), course_id="cls101",
                                     expires=dt.date.today() + dt.timedelta(days=30))
        path = tmp_path_factory.mktemp("class") / "course.toml"
        path.write_text(to_toml(config))
        target = emulator_target(endpoint)
        ensure_bootstrapped(target, config, path)
        yield endpoint, target, config, path


@pytest.fixture(scope="module")
def klass(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Class]:
    yield from started(tmp_path_factory)


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Class]:
    # A new emulator: after its network was cleared by hand, the emulator keeps the class stack's exports, and a
    # second LabDLAMI there would fail on them (README, "The embedded emulator").
    yield from started(tmp_path_factory)


def test_notebooks_whole_class_and_one_student(klass: Class) -> None:
    endpoint, target, config, path = klass
    names = config.names
    cdk(endpoint, path, "deploy", "LabSageMaker-alice")
    assert live_stacks(target) == {names.stack("LabSageMaker", "alice"): "CREATE_COMPLETE"}
    cdk(endpoint, path, "deploy", "LabSageMaker*")
    assert live_stacks(target) == {names.stack("LabSageMaker", s): "CREATE_COMPLETE" for s in config.students}
    cdk(endpoint, path, "destroy", "LabSageMaker-alice", "--force")
    assert live_stacks(target) == {names.stack("LabSageMaker", "bob"): "CREATE_COMPLETE"}
    cdk(endpoint, path, "destroy", "LabSageMaker*", "--force")
    assert live_stacks(target) == {}


def test_gpu_workstations_whole_class_and_one_student(klass: Class) -> None:
    endpoint, target, config, path = klass
    names = config.names
    # One student's stack brings the class network it imports from (the CLI adds dependencies on deploy).
    # `--method=direct` only because the emulator's change sets drop the class stack's outputs, and with them the
    # exports the students' stacks import (README, "Deploying to a real account"); AWS needs no such option.
    cdk(endpoint, path, "deploy", "LabDLAMI-alice", EMULATOR_EXPORTS)
    assert live_stacks(target) == {names.stack("LabDLAMI"): "CREATE_COMPLETE",
                                   names.stack("LabDLAMI", "alice"): "CREATE_COMPLETE"}
    cdk(endpoint, path, "deploy", "LabDLAMI*", EMULATOR_EXPORTS)
    assert set(live_stacks(target)) == {names.stack("LabDLAMI")} | {names.stack("LabDLAMI", s)
                                                                    for s in config.students}
    cdk(endpoint, path, "destroy", "LabDLAMI-alice", "--force")
    assert names.stack("LabDLAMI", "alice") not in live_stacks(target)
    # The class network with its dependents: every student's workstation first (the CLI adds dependents).
    destroy_all(endpoint, target, config, path, "LabDLAMI")
    assert live_stacks(target) == {}


def test_class_labs_by_name(klass: Class) -> None:
    endpoint, target, config, path = klass
    for lab in ("LabContainers", "LabRekognition", "LabGuard"):
        cdk(endpoint, path, "deploy", lab)
        assert live_stacks(target) == {config.names.stack(lab): "CREATE_COMPLETE"}
        cdk(endpoint, path, "destroy", lab, "--force")
        assert live_stacks(target) == {}


def test_the_whole_class_with_all(fresh: Class) -> None:
    endpoint, target, config, path = fresh
    cdk(endpoint, path, "deploy", "--all", EMULATOR_EXPORTS)
    assert live_stacks(target) == {unit.stack_name: "CREATE_COMPLETE" for unit in config.stacks()}
    destroy_all(endpoint, target, config, path)
    assert live_stacks(target) == {}
