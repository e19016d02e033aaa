"""The evaluator against the documented IAM evaluation rules it relies on (IAM User Guide, "Policy evaluation
logic", "IAM policy elements: Variables and tags", "Condition operators"), so its answers about the templates can
be trusted."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.iam_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request, evaluate, resolve

BUCKET = "arn:aws:s3:::data"
ALICE = {"aws:username": "alice", "aws:PrincipalTag/team": "red"}


def allow(action: Any = "s3:GetObject", resource: Any = f"{BUCKET}/*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_default_deny_without_a_matching_allow() -> None:
    assert evaluate([], Request("s3:GetObject", f"{BUCKET}/a")) == IMPLICIT_DENY
    assert evaluate([allow()], Request("s3:PutObject", f"{BUCKET}/a")) == IMPLICIT_DENY


def test_explicit_deny_wins_over_allow_in_any_order() -> None:
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    request = Request("s3:GetObject", f"{BUCKET}/a")
    assert evaluate([allow(), deny], request) == evaluate([deny, allow()], request) == EXPLICIT_DENY
    assert evaluate([allow()], request) == ALLOW


def test_actions_match_case_insensitively_with_wildcards_and_not_action_inverts() -> None:
    assert evaluate([allow("s3:Get*")], Request("S3:getobject", f"{BUCKET}/a")) == ALLOW
    assert evaluate([allow("s3:Get?bject")], Request("s3:GetObject", f"{BUCKET}/a")) == ALLOW
    assert evaluate([allow("s3:Get")], Request("s3:GetObject", f"{BUCKET}/a")) == IMPLICIT_DENY
    not_iam = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    assert evaluate([not_iam], Request("s3:GetObject", "x")) == ALLOW
    assert evaluate([not_iam], Request("iam:CreateUser", "x")) == IMPLICIT_DENY


def test_resources_are_case_sensitive_globs_that_cross_slashes() -> None:
    statement = allow(resource="arn:aws:s3:::data/home/*")
    assert evaluate([statement], Request("s3:GetObject", "arn:aws:s3:::data/home/a/b.txt")) == ALLOW
    assert evaluate([statement], Request("s3:GetObject", "arn:aws:s3:::data/HOME/a")) == IMPLICIT_DENY
    assert evaluate([allow(resource="arn:aws:s3:::dat?/x")], Request("s3:GetObject", "arn:aws:s3:::data/x")) == ALLOW
    not_resource = {"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"}
    assert evaluate([not_resource], Request("s3:GetObject", "arn:aws:s3:::secret/x")) == IMPLICIT_DENY
    assert evaluate([not_resource], Request("s3:GetObject", "arn:aws:s3:::data/x")) == ALLOW


def test_policy_variables_are_substituted_as_literal_text() -> None:
    own = allow(resource="arn:aws:s3:::data/${aws:username}/*")
    assert evaluate([own], Request("s3:GetObject", f"{BUCKET}/alice/a", ALICE)) == ALLOW
    assert evaluate([own], Request("s3:GetObject", f"{BUCKET}/bob/a", ALICE)) == IMPLICIT_DENY
    tagged = allow(resource="arn:aws:s3:::data/${aws:PrincipalTag/team}/*")
    assert evaluate([tagged], Request("s3:GetObject", f"{BUCKET}/red/a", ALICE)) == ALLOW
    # A substituted value is text, never a wildcard.
    star = Request("s3:GetObject", f"{BUCKET}/blue/a", {"aws:PrincipalTag/team": "*"})
    assert evaluate([tagged], star) == IMPLICIT_DENY
    assert evaluate([allow(resource="arn:aws:s3:::data/${*}")], Request("s3:GetObject", f"{BUCKET}/*")) == ALLOW
    assert evaluate([allow(resource="arn:aws:s3:::data/${*}")], Request("s3:GetObject", f"{BUCKET}/x")) == IMPLICIT_DENY


def test_a_variable_without_a_value_matches_nothing() -> None:
    tagged = allow(resource="arn:aws:s3:::data/${aws:PrincipalTag/team}/*")
    assert evaluate([tagged], Request("s3:GetObject", f"{BUCKET}//a", {"aws:username": "bob"})) == IMPLICIT_DENY
    condition = allow(Condition={"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}})
    assert evaluate([condition], Request("s3:GetObject", f"{BUCKET}/a", {"aws:ResourceTag/team": ""})) == IMPLICIT_DENY


def test_condition_keys_and_values_and_operators_combine_as_documented() -> None:
    statement = allow(Condition={
        "StringEquals": {"aws:ResourceTag/team": ["red", "blue"], "aws:ResourceTag/course": "ml101"},
        "Bool": {"aws:SecureTransport": "true"},
    })
    context = {"aws:ResourceTag/team": "blue", "aws:ResourceTag/course": "ml101", "aws:SecureTransport": True}
    assert evaluate([statement], Request("s3:GetObject", f"{BUCKET}/a", context)) == ALLOW
    for key, value in (("aws:ResourceTag/team", "green"), ("aws:ResourceTag/course", "ml102"),
                       ("aws:SecureTransport", False)):
        assert evaluate([statement], Request("s3:GetObject", f"{BUCKET}/a", {**context, key: value})) == IMPLICIT_DENY
    # Keys are case-insensitive, values are not.
    lower = {"aws:resourcetag/TEAM": "blue", "AWS:ResourceTag/course": "ml101", "aws:securetransport": True}
    assert evaluate([statement], Request("s3:GetObject", f"{BUCKET}/a", lower)) == ALLOW
    upper = {**context, "aws:ResourceTag/team": "BLUE"}
    assert evaluate([statement], Request("s3:GetObject", f"{BUCKET}/a", upper)) == IMPLICIT_DENY


def test_missing_keys_make_conditions_false_except_if_exists_null_and_for_all_values() -> None:
    def decide(condition: dict[str, Any], context: dict[str, Any] | None = None) -> str:
        return evaluate([allow(Condition=condition)], Request("s3:GetObject", f"{BUCKET}/a", context or {}))

    assert decide({"StringEquals": {"aws:ResourceTag/team": "red"}}) == IMPLICIT_DENY
    assert decide({"StringLike": {"aws:ResourceTag/team": "*"}}) == IMPLICIT_DENY
    assert decide({"StringEqualsIfExists": {"aws:ResourceTag/team": "red"}}) == ALLOW
    assert decide({"StringEqualsIfExists": {"aws:ResourceTag/team": "red"}}, {"aws:ResourceTag/team": "x"}) == \
        IMPLICIT_DENY
    assert decide({"Null": {"aws:ResourceTag/team": "true"}}) == ALLOW
    assert decide({"Null": {"aws:ResourceTag/team": "false"}}) == IMPLICIT_DENY
    assert decide({"Null": {"aws:ResourceTag/team": "false"}}, {"aws:ResourceTag/team": "red"}) == ALLOW
    # Multivalued keys: ForAllValues is true for an empty or missing set, ForAnyValue false.
    assert decide({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}) == ALLOW
    assert decide({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}) == IMPLICIT_DENY
    assert decide({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}, {"aws:TagKeys": ["team", "x"]}) == \
        IMPLICIT_DENY
    assert decide({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}, {"aws:TagKeys": ["team", "x"]}) == ALLOW


def test_string_like_and_arn_like_use_globs_with_literal_variables() -> None:
    like = allow(Condition={"StringLike": {"aws:ResourceTag/owner": "${aws:username}-*"}})
    assert evaluate([like], Request("s3:GetObject", f"{BUCKET}/x", {**ALICE, "aws:ResourceTag/owner": "alice-1"})) == ALLOW
    assert evaluate([like], Request("s3:GetObject", f"{BUCKET}/x", {**ALICE, "aws:ResourceTag/owner": "bob-1"})) == IMPLICIT_DENY
    arn = allow(Condition={"ArnLike": {"aws:SourceArn": "arn:aws:s3:::data*"}})
    assert evaluate([arn], Request("s3:GetObject", f"{BUCKET}/x", {"aws:SourceArn": "arn:aws:s3:::data-2"})) == ALLOW


def test_unknown_shapes_are_refused_not_guessed() -> None:
    with pytest.raises(NotImplementedError, match="NumericLessThan"):
        evaluate([allow(Condition={"NumericLessThan": {"s3:max-keys": "10"}})], Request("s3:GetObject", f"{BUCKET}/x"))
    with pytest.raises(NotImplementedError, match="Principal"):
        evaluate([allow(Principal="*")], Request("s3:GetObject", f"{BUCKET}/x"))
    with pytest.raises(NotImplementedError, match="Fn::Sub"):
        resolve({"Fn::Sub": "arn:${AWS::Partition}"}, account="1", region="r")


def test_resolve_writes_the_intrinsics_cdk_uses_as_strings() -> None:
    value = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::b-", {"Ref": "AWS::AccountId"}, "/*"]]}
    assert resolve(value, account="123456789012", region="us-east-1") == "arn:aws:s3:::b-123456789012/*"
    assert resolve({"Fn::GetAtt": ["Repo", "Arn"]}, account="1", region="r", arns={"Repo": "arn:x"}) == "arn:x"
