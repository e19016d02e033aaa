"""The one synthesis with CDK's built-in CloudFormation validation on (the others skip it for speed)."""

from __future__ import annotations

from course.config import LabConfig
from course.layout import stack_units
from tests.conftest import new_app


def test_app_synthesizes_with_cloudformation_validation(config: LabConfig) -> None:
    assembly = new_app(config, validation=True).synth()
    assert {stack.stack_name for stack in assembly.stacks} == {
        unit.stack_name for unit in stack_units(config.names, config.students)}


# CloudFormation's limits per template (resources, outputs, parameters).
LIMITS = {"Resources": 500, "Outputs": 200, "Parameters": 200}


def test_largest_allowed_class_fits_cloudformation_stack_limits() -> None:
    """Students' stacks do not grow with the class; class stacks grow per student. Measured from one and two
    students, the largest class allowed must stay within CloudFormation's limits per stack."""
    from aws_cdk import Stack
    from aws_cdk.assertions import Template

    from course.config import MAX_STUDENTS
    from tests.conftest import make_config

    def sizes(students: list[str]) -> dict[tuple[str, str], int]:
        app = new_app(make_config(students=students))
        return {(stack.node.id, section): len(Template.from_stack(stack).to_json().get(section, {}))
                for stack in app.node.children if isinstance(stack, Stack) for section in LIMITS}

    one, two = sizes(["s0"]), sizes(["s0", "s1"])
    for (construct_id, section), fixed in one.items():
        per_student = two[construct_id, section] - fixed
        assert fixed + per_student * (MAX_STUDENTS - 1) <= LIMITS[section], (construct_id, section, per_student)
