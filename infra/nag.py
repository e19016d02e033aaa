"""Helpers for cdk-nag acknowledgments: one finding each, always with a reason, next to what it covers."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding (e.g. 'AwsSolutions-IAM5[Resource::...]') on `scope` and its children."""
    if len(reason) < 30:
        raise ValueError(f"acknowledgment of {finding} needs a real reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason))


def acknowledge_wildcard_resource(policy: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge IAM5 for exactly one wildcard resource ARN of `policy`, written as cdk-nag writes it."""
    rendered = _render(Stack.of(policy).resolve(resource))
    acknowledge(policy, f"AwsSolutions-IAM5[Resource::{rendered}]", reason)


def _render(value: Any) -> str:
    """cdk-nag's text for a resolved ARN: Ref -> <Name>, GetAtt -> <Id.Attr>, joins concatenated."""
    if isinstance(value, str):
        # cdk-nag writes IAM policy variables such as ${aws:username} as <aws:username>.
        return re.sub(r"\$\{([^}]*)\}", r"<\1>", value)
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(part) for part in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    raise ValueError(f"cannot render {value!r} as a cdk-nag finding")
