"""Which stacks a course is made of, in each classroom mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from course.config import GUARDED_LABS, LabConfig
from course.layout import CLASSROOM, LABS, PER_STUDENT_LABS, StackUnit, lab_stack_names, stack_units
from course.naming import CourseNames
from tests.conftest import per_account_config

NAMES = CourseNames("ml101", "123456789012", "us-east-1")


def test_single_account_has_class_stacks_and_a_stack_per_student_and_lab() -> None:
    units = stack_units(NAMES, ["alice", "bob"])
    assert [unit.construct_id for unit in units] == [
        "LabSageMaker-alice", "LabSageMaker-bob", "LabDLAMI", "LabDLAMI-alice", "LabDLAMI-bob", "LabContainers",
        "LabRekognition", "LabGuard"]
    assert lab_stack_names(NAMES, ["alice"], "LabDLAMI") == ["ml101-LabDLAMI-alice", "ml101-LabDLAMI"]


def test_account_per_student_serves_the_students_labs_from_one_classroom_stack() -> None:
    classroom = StackUnit(CLASSROOM, None, "ml101-LabClassroom")
    assert stack_units(NAMES, ["alice", "bob"], per_account=True) == [
        classroom, StackUnit("LabRekognition", None, "ml101-LabRekognition"),
        StackUnit("LabGuard", None, "ml101-LabGuard")]
    assert stack_units(NAMES, ["alice"], ["LabDLAMI", "LabSageMaker"], per_account=True) == [classroom]
    assert stack_units(NAMES, ["alice"], ["LabContainers"], per_account=True) == []
    assert stack_units(NAMES, ["alice"], [CLASSROOM], per_account=True) == [classroom]
    assert lab_stack_names(NAMES, ["alice"], "LabSageMaker", per_account=True) == ["ml101-LabClassroom"]


def test_config_lays_out_stacks_by_its_mode(tmp_path: Path, config: LabConfig) -> None:
    per_account = per_account_config(tmp_path, 3)
    assert [unit.lab for unit in per_account.stacks()] == [CLASSROOM, "LabRekognition", "LabGuard"]
    assert per_account.lab_stacks("LabDLAMI") == ["ml101-LabClassroom"]
    assert per_account.guarded_labs == ["LabRekognition"]
    assert config.guarded_labs == GUARDED_LABS == [lab for lab in LABS if lab != "LabGuard"]


def test_solo_has_one_stack_per_lab_named_like_the_lab() -> None:
    names = CourseNames("mylab", "123456789012", "us-east-1")
    units = stack_units(names, ["me"], solo=True)
    assert [unit.construct_id for unit in units] == LABS
    assert {unit.stack_name for unit in units} == {f"mylab-{lab}" for lab in LABS}
    assert [unit.student for unit in units if unit.lab in PER_STUDENT_LABS] == ["me", "me"]
    assert lab_stack_names(names, ["me"], "LabSageMaker", solo=True) == ["mylab-LabSageMaker"]
    with pytest.raises(ValueError):
        stack_units(names, ["me", "you"], solo=True)
