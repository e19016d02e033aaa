"""The one synthesis with CDK's built-in CloudFormation validation on (the others skip it for speed)."""

from __future__ import annotations

from labkit.config import LABS, LabConfig
from tests.conftest import new_app


def test_app_synthesizes_with_cloudformation_validation(config: LabConfig) -> None:
    assembly = new_app(config, validation=True).synth()
    assert {stack.stack_name for stack in assembly.stacks} == {config.names.stack(lab) for lab in LABS}


def test_largest_allowed_class_fits_cloudformation_stack_limits() -> None:
    from aws_cdk import Stack
    from aws_cdk.assertions import Template

    from labkit.config import MAX_STUDENTS
    from tests.conftest import make_config

    app = new_app(make_config(students=[f"s{index}" for index in range(MAX_STUDENTS)]))
    for stack in (child for child in app.node.children if isinstance(child, Stack)):
        assert len(Template.from_stack(stack).to_json()["Resources"]) <= 500, stack.node.id
