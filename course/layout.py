"""Which CloudFormation stacks a course is made of: one per student for the labs that give each student a
machine, one per class for what the class shares.

Per-student stacks keep a class inside CloudFormation's 500-resources-per-stack limit whatever its size, deploy
in parallel, and fail alone: one student's capacity error does not roll back the class. Class-wide resources
(network, container access, image labelling, guard and budget) exist once.

In account-per-student mode the students' labs live in their own accounts: one class stack, LabClassroom, holds
the stack set that deploys them to the class's OU, so the stacks here do not depend on the class size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from course.naming import CLASSROOM, CourseNames

LABS = ["LabSageMaker", "LabDLAMI", "LabContainers", "LabRekognition", "LabGuard"]
# Labs with a stack per student, `<lab>-<student>`.
PER_STUDENT_LABS = frozenset({"LabSageMaker", "LabDLAMI"})
# Labs with a class-wide stack named like the lab. LabDLAMI has both: the class network and GPU role, which
# the students' stacks import.
CLASS_LABS = frozenset({"LabDLAMI", "LabContainers", "LabRekognition", "LabGuard"})
# Account-per-student mode: labs without a stack in the class account. Students pull Deep Learning Containers
# in their own account (the GPU instance role already may), so LabContainers' users and group are not needed.
OWN_ACCOUNT_LABS = frozenset({"LabContainers"})
# Where LabClassroom writes the student-account template, inside the cloud assembly.
STUDENT_ACCOUNT_DIR = "student-account"


@dataclass(frozen=True)
class StackUnit:
    """One stack of the course: `construct_id` is what `cdk deploy` takes, `stack_name` what CloudFormation shows."""

    lab: str
    student: str | None
    stack_name: str
    # Solo mode: the learner's stacks are named like the lab (`cdk deploy LabSageMaker`), student or not.
    solo: bool = False

    @property
    def construct_id(self) -> str:
        return self.lab if self.student is None or self.solo else f"{self.lab}-{self.student}"


def stack_units(names: CourseNames, students: Iterable[str], labs: Iterable[str] = LABS, *,
                per_account: bool = False, solo: bool = False) -> list[StackUnit]:
    """The stacks of `labs` in deploy order: each lab's class stack, then its students' stacks. In
    account-per-student mode the per-student labs are all served by the one LabClassroom stack. In solo mode
    each lab is one stack `<lab>` (CloudFormation: `<course>-<lab>`), the learner's (the one student) where the
    lab has a per-student stack: LabDLAMI then holds the network and the GPU instance together."""
    if per_account:
        return _account_units(names, labs)
    if solo:
        (learner,) = tuple(students)
        return [StackUnit(lab, learner if lab in PER_STUDENT_LABS else None, names.stack(lab), solo=True)
                for lab in labs if lab in PER_STUDENT_LABS | CLASS_LABS]
    students = tuple(students)
    units: list[StackUnit] = []
    for lab in labs:
        if lab in CLASS_LABS:
            units.append(StackUnit(lab, None, names.stack(lab)))
        if lab in PER_STUDENT_LABS:
            units += [StackUnit(lab, student, names.stack(lab, student)) for student in students]
    return units


def _account_units(names: CourseNames, labs: Iterable[str]) -> list[StackUnit]:
    units: list[StackUnit] = []
    for lab in labs:
        if lab in PER_STUDENT_LABS or lab == CLASSROOM:
            unit = StackUnit(CLASSROOM, None, names.stack(CLASSROOM))
        elif lab in CLASS_LABS - OWN_ACCOUNT_LABS:
            unit = StackUnit(lab, None, names.stack(lab))
        else:
            continue
        if unit not in units:
            units.append(unit)
    return units


def lab_stack_names(names: CourseNames, students: Iterable[str], lab: str, *, per_account: bool = False,
                    solo: bool = False) -> list[str]:
    """Every stack name of one lab, students' first (they import from the class stack, so they go first)."""
    units = stack_units(names, students, [lab], per_account=per_account, solo=solo)
    return [unit.stack_name for unit in sorted(units, key=lambda unit: unit.student is None)]
