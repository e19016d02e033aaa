"""cfn-lint over every template the app synthesizes, in both modes: no errors and no warnings.

cfn-lint checks each template against CloudFormation's resource schemas (properties, types, ARN shapes,
dependencies) as of its own release, which CDK's own synthesis does not. It comes with moto[cloudformation].
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from cfnlint.config import ConfigMixIn
from cfnlint.decode.decode import decode_str
from cfnlint.runner import Runner

from course.config import parse_config
from stacks import build_app
from tests.conftest import TODAY, cdk_context

# Rules not run, each with the reason. Nothing is ignored: a warning is fixed where the template is made.
IGNORED: dict[str, str] = {}
REGIONS = ["us-east-1"]


def templates_of(app: Any) -> dict[str, dict[str, Any]]:
    found = {stack.stack_name: Template.from_stack(stack).to_json()
             for stack in app.node.children if isinstance(stack, Stack)}
    classroom = app.node.try_find_child("LabClassroom")
    if classroom is not None:
        # The template the stack set deploys into every student's account, written beside the assembly.
        found["LabStudent"] = json.loads(classroom.student_template.read_text())
    return found


@functools.cache
def runner() -> Runner:
    """One runner for every template: loading cfn-lint's rules and schemas is most of its time (17 s for 11
    templates with a runner each, 3.6 s with one)."""
    return Runner(ConfigMixIn(regions=REGIONS, ignore_checks=sorted(IGNORED)))


def findings(template: dict[str, Any]) -> list[str]:
    decoded, errors = decode_str(json.dumps(template))
    matches = errors or list(runner().validate_template(decoded))
    return [f"{match.rule.id} {match.message} ({'/'.join(str(p) for p in match.path)})" for match in matches]


@pytest.fixture(scope="module")
def all_templates(app: Any, per_account_app: Any) -> dict[str, dict[str, Any]]:
    single = {f"single-account {name}": body for name, body in templates_of(app).items()}
    per_account = {f"account-per-student {name}": body for name, body in templates_of(per_account_app).items()}
    solo = parse_config({"course": {"id": "mylab", "account": "123456789012", "region": "us-east-1",
                                    "expires": dt.date(2027, 1, 31)}}, today=TODAY)
    alone = {f"solo {name}": body for name, body in templates_of(build_app(App(context=cdk_context()), solo)).items()}
    return {**single, **per_account, **alone}


def test_every_template_of_both_modes_is_checked(all_templates: dict[str, dict[str, Any]]) -> None:
    names = set(all_templates)
    assert {"single-account ml101-LabContainers", "single-account ml101-LabSageMaker-alice",
            "account-per-student ml101-LabClassroom", "account-per-student LabStudent"} <= names
    # 8 stacks of a 2-student class, 3 class stacks and the student template, 5 stacks of a solo learner
    assert len(names) == 17 and "solo mylab-LabSageMaker" in names


def test_no_cfn_lint_errors_or_warnings(all_templates: dict[str, dict[str, Any]]) -> None:
    found = {name: problems for name, template in all_templates.items() if (problems := findings(template))}
    assert found == {}


def test_the_gate_can_fail() -> None:
    """A redundant DependsOn (what W3005 found in LabGuard and LabRekognition before) is reported."""
    template = {"Resources": {
        "Topic": {"Type": "AWS::SNS::Topic"},
        "Queue": {"Type": "AWS::SQS::Queue", "DependsOn": ["Topic"],
                  "Properties": {"QueueName": {"Fn::GetAtt": ["Topic", "TopicName"]}}}}}
    assert [problem.split()[0] for problem in findings(template)] == ["W3005"]


def test_every_ignored_rule_has_a_reason() -> None:
    assert all(len(reason.split()) >= 5 for reason in IGNORED.values())
