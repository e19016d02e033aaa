"""LabGuard template: the schedule, least-privilege roles, the budget, an encrypted topic, a log group that goes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Template

from infra.teardown_guard import BUDGET_ALERTS, DELETE_PERMISSIONS, UNSCOPED
from lab_scripts.guard_fn.handler import Settings
from lab_scripts.prices import guard_prices
from course.config import GUARDED_LABS, LabConfig
from course.naming import TAG_COURSE
from tests.conftest import cdk_context, make_config

TAG_CONDITION = {"StringEquals": {f"aws:ResourceTag/{TAG_COURSE}": "ml101"}}


@pytest.fixture(scope="module")
def resources(templates: dict[str, Template]) -> dict[str, Any]:
    return templates["LabGuard"].to_json()["Resources"]  # type: ignore[no-any-return]


def one(resources: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    found = [(logical_id, r) for logical_id, r in resources.items() if r["Type"] == kind]
    assert len(found) == 1, kind
    return found[0]


def policy_of(resources: dict[str, Any], role_name: str) -> list[dict[str, Any]]:
    role_id = next(k for k, r in resources.items() if r["Properties"].get("RoleName") == role_name)
    policy = next(r for r in resources.values()
                  if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"])
    return policy["Properties"]["PolicyDocument"]["Statement"]  # type: ignore[no-any-return]


def actions(statement: dict[str, Any]) -> list[str]:
    listed = statement["Action"]
    return [listed] if isinstance(listed, str) else list(listed)


def test_scheduled_by_an_eventbridge_rule_without_retries(resources: dict[str, Any], config: LabConfig) -> None:
    function_id, _ = one(resources, "AWS::Lambda::Function")
    _, rule = one(resources, "AWS::Events::Rule")
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"  # the spend cap acts within 5 minutes
    assert rule["Properties"]["Name"] == config.names.guard.schedule
    target, = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 3600}
    _, permission = one(resources, "AWS::Lambda::Permission")
    assert permission["Properties"]["Principal"] == "events.amazonaws.com"
    assert not any(r["Type"] == "AWS::Scheduler::Schedule" for r in resources.values())  # the emulator skips those


def test_function_runs_alone_with_the_course_settings(resources: dict[str, Any], config: LabConfig) -> None:
    _, function = one(resources, "AWS::Lambda::Function")
    props = function["Properties"]
    assert (props["Runtime"], props["Architectures"], props["Timeout"]) == ("python3.14", ["arm64"], 900)
    assert props["ReservedConcurrentExecutions"] == 1
    env = props["Environment"]["Variables"]
    assert env["LABKIT_STACKS"] == ",".join(config.names.stack(lab) for lab in GUARDED_LABS)
    assert "LabGuard" not in env["LABKIT_STACKS"]  # it never deletes itself
    assert env["LABKIT_DRY_RUN"] == "true"  # make_config has no [guard]: report only
    plain = {name: value for name, value in env.items() if isinstance(value, str)}
    expected = Settings(course="ml101", expires=config.expires, stacks=tuple(env["LABKIT_STACKS"].split(",")),
                        iam_path=config.names.iam_path, prices=guard_prices(config.sagemaker.instance_type,
                                                                            config.dlami.instance_type)).to_env()
    assert plain == {name: value for name, value in expected.items() if name in plain}
    # The student-account settings only in account-per-student mode.
    assert set(env) == set(Settings.ENV.values()) | set(Settings.OPTIONAL.values()) - {
        "LABKIT_STUDENT_STACK_SET", "LABKIT_STUDENT_ROLE"}
    # The meter's prices: the course's two machine types only, from the bundled table.
    assert json.loads(env["LABKIT_PRICES"]) == {"g4dn.xlarge": 0.526, "ml.t3.medium": 0.05}
    assert (env["LABKIT_MAX_USD_PER_STUDENT_DAY"], env["LABKIT_MAX_USD_CLASS_DAY"]) == ("off", "off")


def test_log_group_is_the_functions_own_and_goes_with_the_stack(resources: dict[str, Any]) -> None:
    log_id, log_group = one(resources, "AWS::Logs::LogGroup")
    assert log_group["Properties"] == {"LogGroupName": "/aws/lambda/ml101-guard", "RetentionInDays": 14,
                                       "Tags": log_group["Properties"]["Tags"]}
    assert log_group["DeletionPolicy"] == "Delete"
    _, function = one(resources, "AWS::Lambda::Function")
    assert function["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": log_id}}


def test_report_topic_is_encrypted_tls_only_and_open_to_budgets(resources: dict[str, Any]) -> None:
    key_id, key = one(resources, "AWS::KMS::Key")
    _, topic = one(resources, "AWS::SNS::Topic")
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    assert (key["DeletionPolicy"], key["Properties"]["PendingWindowInDays"]) == ("Delete", 7)
    key_policy = key["Properties"]["KeyPolicy"]["Statement"]
    budgets_key = next(s for s in key_policy if s.get("Sid") == "BudgetsPublishEncrypted")
    assert budgets_key["Principal"] == {"Service": "budgets.amazonaws.com"}
    _, policy = one(resources, "AWS::SNS::TopicPolicy")
    statements = {s.get("Sid", s["Effect"]): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["BudgetsPublish"]["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    deny = next(s for s in statements.values() if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_budget_alerts_at_each_threshold(resources: dict[str, Any], config: LabConfig) -> None:
    topic_id, _ = one(resources, "AWS::SNS::Topic")
    _, budget = one(resources, "AWS::Budgets::Budget")
    data = budget["Properties"]["Budget"]
    assert (data["BudgetName"], data["BudgetType"], data["TimeUnit"]) == ("ml101-class-budget", "COST", "MONTHLY")
    assert data["BudgetLimit"] == {"Amount": config.budget_usd, "Unit": "USD"}
    alerts = budget["Properties"]["NotificationsWithSubscribers"]
    assert [(a["Notification"]["NotificationType"], a["Notification"]["Threshold"]) for a in alerts] == list(
        BUDGET_ALERTS) == [("ACTUAL", 50), ("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)]
    for alert in alerts:
        assert alert["Subscribers"] == [{"SubscriptionType": "SNS", "Address": {"Ref": topic_id}}]


def test_instructor_email_receives_budget_alerts_and_reports() -> None:
    from stacks.guard_stack import LabGuardStack

    config = make_config(course={"instructor_email": "teacher@example.edu"})
    app = App(context=cdk_context(), builtin_cloud_formation_validation=False)
    stack = LabGuardStack(app, "LabGuard", config=config, env=Environment(account=config.account, region=config.region))
    resources = Template.from_stack(stack).to_json()["Resources"]
    _, subscription = one(resources, "AWS::SNS::Subscription")
    assert (subscription["Properties"]["Protocol"], subscription["Properties"]["Endpoint"]) == (
        "email", "teacher@example.edu")
    _, budget = one(resources, "AWS::Budgets::Budget")
    for alert in budget["Properties"]["NotificationsWithSubscribers"]:
        assert {"SubscriptionType": "EMAIL", "Address": "teacher@example.edu"} in alert["Subscribers"]


def test_function_role_stops_and_deletes_only_what_carries_the_course_tag(resources: dict[str, Any]) -> None:
    statements = {s["Sid"]: s for s in policy_of(resources, "ml101-guard")}
    for sid in ("StopCourseNotebooks", "StopCourseInstances", "DeactivateStudentKeys", "DeleteLabStacks"):
        assert statements[sid]["Condition"] == TAG_CONDITION, sid
    mutating = {a for s in statements.values() for a in actions(s)
                if a.split(":")[1].startswith(("Stop", "Delete", "Update", "Terminate"))}
    assert mutating == {"sagemaker:StopNotebookInstance", "ec2:StopInstances", "iam:UpdateAccessKey",
                        "cloudformation:DeleteStack"}
    stacks = statements["DeleteLabStacks"]["Resource"]
    # Class stacks by exact name, students' stacks by their lab's prefix; LabSageMaker has no class stack.
    assert sorted(stacks) == sorted(f"arn:aws:cloudformation:us-east-1:123456789012:stack/ml101-{name}/*" for name in (
        "LabContainers", "LabDLAMI", "LabDLAMI-*", "LabRekognition", "LabSageMaker-*"))
    assert statements["PassTeardownRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
    assert not [a for s in statements.values() for a in actions(s) if "*" in a]


def test_tagging_is_granted_only_with_a_cap_and_only_for_the_guards_two_tags() -> None:
    """Without a cap the guard's role is unchanged; with one it may write its ledger and cap tags on course
    machines and remove the cap tag, nothing else."""
    uncapped = [s["Sid"] for s in policy_of(guard_resources(), "ml101-guard")]
    assert not {"MeterInstances", "MeterNotebooks", "LiftInstanceCaps", "LiftNotebookCaps"} & set(uncapped)
    statements = {s["Sid"]: s for s in policy_of(guard_resources(max_usd_per_student_day=5), "ml101-guard")}
    expected = {"MeterInstances": ("ec2:CreateTags", ["labkit:spend", "labkit:capped"]),
                "LiftInstanceCaps": ("ec2:DeleteTags", ["labkit:capped"]),
                "MeterNotebooks": ("sagemaker:AddTags", ["labkit:spend", "labkit:capped"]),
                "LiftNotebookCaps": ("sagemaker:DeleteTags", ["labkit:capped"])}
    for sid, (action, keys) in expected.items():
        assert actions(statements[sid]) == [action]
        assert statements[sid]["Condition"] == {**TAG_CONDITION,
                                                "ForAllValues:StringEquals": {"aws:TagKeys": keys}}, sid


def guard_resources(**guard: Any) -> dict[str, Any]:
    from stacks.guard_stack import LabGuardStack

    config = make_config(guard=guard)
    app = App(context=cdk_context(), builtin_cloud_formation_validation=False)
    stack = LabGuardStack(app, "LabGuard", config=config, env=Environment(account=config.account, region=config.region))
    return Template.from_stack(stack).to_json()["Resources"]  # type: ignore[no-any-return]


def test_teardown_role_is_for_cloudformation_and_scoped_to_the_course(resources: dict[str, Any]) -> None:
    role = next(r for r in resources.values() if r["Properties"].get("RoleName") == "ml101-guard-teardown")
    trust, = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    statements = policy_of(resources, "ml101-guard-teardown")
    for statement in statements:
        star = statement["Resource"] == "*"
        read_only = all(a in UNSCOPED or a.split(":")[1].startswith("Describe") for a in actions(statement))
        # Resource "*" only for reads without a resource type, or with the course-tag condition.
        assert not star or read_only or statement["Condition"] == TAG_CONDITION, statement["Sid"]
        for resource in [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]:
            assert resource == "*" or "ml101" in resource, resource
    granted = {a for s in statements for a in actions(s)}
    assert granted == {a for listed in DELETE_PERMISSIONS.values() for a in listed}


def test_teardown_role_covers_every_type_in_the_guarded_stacks(templates: dict[str, Template]) -> None:
    kinds = {r["Type"] for construct_id, template in templates.items() if not construct_id.startswith("LabGuard")
             for r in template.to_json()["Resources"].values()}
    assert kinds - {"AWS::CDK::Metadata"} <= set(DELETE_PERMISSIONS)


def test_delete_permissions_match_the_resource_provider_schemas() -> None:
    """The table is what each type's schema lists under handlers.delete (cfn-lint ships the schemas)."""
    import importlib.util

    spec = importlib.util.find_spec("cfnlint")  # located, not imported: importing cfn-lint takes seconds
    assert spec is not None and spec.submodule_search_locations
    schemas = Path(list(spec.submodule_search_locations)[0]) / "data" / "schemas"
    index = json.loads((schemas / "providers" / "us-east-1.json").read_text())
    for kind, granted in DELETE_PERMISSIONS.items():
        schema = json.loads((schemas / "resources" / f"{index[kind]}.json").read_text())
        listed = set(schema["handlers"]["delete"]["permissions"])
        assert set(granted) == listed - {"kms:RetireGrant"}, kind


def test_nothing_retained_and_everything_taggable_tagged(resources: dict[str, Any]) -> None:
    for logical_id, resource in resources.items():
        assert resource.get("DeletionPolicy", "Delete") == "Delete", logical_id
    for kind in ("AWS::KMS::Key", "AWS::SNS::Topic", "AWS::Lambda::Function", "AWS::Logs::LogGroup", "AWS::IAM::Role"):
        for _, resource in [(k, r) for k, r in resources.items() if r["Type"] == kind]:
            assert {"Key": TAG_COURSE, "Value": "ml101"} in resource["Properties"]["Tags"], kind


def test_stacks_carry_the_course_tag_for_the_delete_condition(app: App) -> None:
    for stack in (child for child in app.node.children if isinstance(child, Stack)):
        assert stack.tags.tag_values()[TAG_COURSE] == "ml101", stack.node.id
