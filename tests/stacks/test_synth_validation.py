"""The one synthesis with CDK's built-in CloudFormation validation on (the others skip it for speed)."""

from __future__ import annotations

from labkit.config import LABS, LabConfig
from tests.conftest import new_app


def test_app_synthesizes_with_cloudformation_validation(config: LabConfig) -> None:
    assembly = new_app(config, validation=True).synth()
    assert {stack.stack_name for stack in assembly.stacks} == {config.names.stack(lab) for lab in LABS}
