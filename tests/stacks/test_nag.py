"""cdk-nag AwsSolutions: zero unacknowledged findings, and every acknowledgment carries a reason."""

from __future__ import annotations

from typing import Any

from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks

from infra.nag import _render, acknowledge

import pytest


def violations(scope: Any) -> list[str]:
    report = AwsSolutionsChecks().validate_scope(scope)
    return [violation.rule_name for violation in report.violations]


def test_app_has_no_unacknowledged_findings(app: App) -> None:
    assert violations(app) == []


def test_gate_catches_an_unacknowledged_wildcard() -> None:
    """The nag check above can fail: an unscoped policy is reported."""
    app = App()
    stack = Stack(app, "Probe")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))
    assert "AwsSolutions-IAM5[Resource::*]" in violations(app)


def test_acknowledgment_without_reason_is_refused() -> None:
    stack = Stack(App(), "Probe")
    with pytest.raises(ValueError, match="needs a real reason"):
        acknowledge(stack, "AwsSolutions-S1", "because")


def test_finding_text_matches_cdk_nag_rendering() -> None:
    joined = {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket12", "Arn"]}, "/*"]]}
    assert _render(joined) == "<Bucket12.Arn>/*"
    assert _render({"Fn::Join": [":", ["arn", {"Ref": "AWS::Partition"}, "s3"]]}) == "arn:<AWS::Partition>:s3"


def test_each_labeler_acknowledgment_covers_a_real_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without its acknowledgments the labeler shows exactly the findings they name: none is stale or too broad."""
    from infra import image_labeler, lab_bucket, nag
    from lab_scripts.rekognition_fn.handler import FEATURES, Analysis, Settings
    from course.naming import RekognitionNames

    named: list[str] = []
    for module in (image_labeler, lab_bucket, nag):
        monkeypatch.setattr(module, "acknowledge", lambda scope, finding, reason: named.append(finding))
    app = App()
    stack = Stack(app, "Probe", env={"account": "123456789012", "region": "us-east-1"})
    image_labeler.ImageLabeler(stack, "Labels", props=image_labeler.ImageLabelerProps(
        names=RekognitionNames("ml101", "123456789012", "us-east-1"), iam_path="/labkit/ml101/",
        settings=Settings(Analysis(tuple(FEATURES)))))
    assert sorted(violations(app)) == sorted(named)
    assert len(named) == len(set(named)) == 4


def test_each_guard_acknowledgment_covers_a_real_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without its acknowledgments the guard shows exactly the findings they name, each once per policy."""
    from infra import nag, teardown_guard
    from lab_scripts.guard_fn.handler import Settings
    from course.config import GUARDED_LABS
    from tests.conftest import make_config

    named: list[tuple[str, str]] = []
    for module in (teardown_guard, nag):
        monkeypatch.setattr(module, "acknowledge",
                            lambda scope, finding, reason: named.append((scope.node.path, finding)))
    config = make_config()
    app = App()
    stack = Stack(app, "Probe", env={"account": config.account, "region": config.region})
    settings = Settings(course=config.course_id, expires=config.expires, iam_path=config.names.iam_path,
                        stacks=tuple(config.names.stack(lab) for lab in GUARDED_LABS))
    teardown_guard.TeardownGuard(stack, "Guard", props=teardown_guard.GuardProps(
        names=config.names, settings=settings, every_minutes=30,
        budget_usd=config.budget_usd))
    # The function's policy and the teardown policy each have their own findings (two share an id).
    assert sorted(set(violations(app))) == sorted({finding for _, finding in named})
    assert len(named) == len(set(named)) == 18
