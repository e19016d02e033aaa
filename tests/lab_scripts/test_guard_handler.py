"""LabGuard's handler under moto, with an injected clock and injected failures (botocore Stubber).

moto stamps resources with the real time, so clocks here are "now + N minutes" rather than fixed dates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from lab_scripts.guard_fn import handler
from lab_scripts.guard_fn.handler import (CAPPED, DEACTIVATE_KEY, DELETE_STACK, DONE, FAILED, IN_PROGRESS,
                                          STOP_INSTANCE, STOP_NOTEBOOK, WOULD, Calls, Policy, Settings,
                                          SettingsError, run)
from tests.lab_scripts.conftest import create_notebook

UTC = dt.timezone.utc
PATH = "/labkit/ml101/"
COURSE_TAG = [{"Key": "labkit:course", "Value": "ml101"}]
OTHER_TAG = [{"Key": "labkit:course", "Value": "ml102"}]
STACKS = ("ml101-LabSageMaker", "ml101-LabContainers")
EXPIRES = dt.date.today() + dt.timedelta(days=10)
AFTER_EXPIRY = dt.datetime.combine(EXPIRES + dt.timedelta(days=1), dt.time(9), UTC)


def later(minutes: int) -> dt.datetime:
    return dt.datetime.now(UTC) + dt.timedelta(minutes=minutes)


def settings(topic: str = "", stacks: tuple[str, ...] = STACKS, **policy: Any) -> Settings:
    return Settings(course="ml101", expires=EXPIRES, stacks=stacks, iam_path=PATH, topic_arn=topic,
                    teardown_role_arn="arn:aws:iam::123456789012:role/labkit/ml101/ml101-guard-teardown",
                    policy=Policy(**{"dry_run": False, "idle_minutes": 60, **policy}))


def no_sleep(seconds: float) -> None:
    pass


def guard(aws: Any, config: Settings, now: dt.datetime, **kwargs: Any) -> handler.Report:
    return run(config, aws, now=now, sleep=kwargs.pop("sleep", no_sleep), poll_seconds=0, **kwargs)


def tagged_notebook(aws: Any, name: str, tags: list[dict[str, str]] | None = COURSE_TAG) -> str:
    create_notebook(aws, name)
    arn = aws("sagemaker").describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceArn"]
    if tags:
        aws("sagemaker").add_tags(ResourceArn=arn, Tags=tags)
    return name


def launch(aws: Any, tags: list[dict[str, str]] | None = COURSE_TAG) -> str:
    spec = [{"ResourceType": "instance", "Tags": tags}] if tags else []
    return str(aws("ec2").run_instances(ImageId="ami-12c6146b", InstanceType="g4dn.xlarge", MinCount=1, MaxCount=1,
                                        TagSpecifications=spec)["Instances"][0]["InstanceId"])


def student_key(aws: Any, user: str, tags: list[dict[str, str]] | None = COURSE_TAG) -> str:
    aws("iam").create_user(UserName=user, Path=PATH, **({"Tags": tags} if tags else {}))
    return str(aws("iam").create_access_key(UserName=user)["AccessKey"]["AccessKeyId"])


def lab_stack(aws: Any, name: str, tags: list[dict[str, str]] | None = COURSE_TAG) -> None:
    body = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name}}}})
    aws("cloudformation").create_stack(StackName=name, TemplateBody=body, **({"Tags": tags} if tags else {}))


def notebook_status(aws: Any, name: str) -> str:
    return str(aws("sagemaker").describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"])


def instance_state(aws: Any, instance_id: str) -> str:
    reservations = aws("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(reservations[0]["Instances"][0]["State"]["Name"])


def key_status(aws: Any, user: str) -> str:
    return str(aws("iam").list_access_keys(UserName=user)["AccessKeyMetadata"][0]["Status"])


def stack_status(aws: Any, name: str) -> str:
    summaries = aws("cloudformation").list_stacks()["StackSummaries"]
    return next(s["StackStatus"] for s in summaries if s["StackName"] == name)


@pytest.fixture
def reports(aws: Any) -> tuple[str, Callable[[], list[dict[str, str]]]]:
    """An SNS topic with a queue behind it: what the guard published, subject and text."""
    topic = aws("sns").create_topic(Name="ml101-guard-reports")["TopicArn"]
    queue = aws("sqs").create_queue(QueueName="reports")["QueueUrl"]
    queue_arn = aws("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    def received() -> list[dict[str, str]]:
        messages = aws("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]

    return topic, received


@pytest.fixture
def course(aws: Any) -> dict[str, str]:
    """A running class: two tagged notebooks, a GPU instance and a student's access key."""
    return {
        "alice": tagged_notebook(aws, "ml101-alice"),
        "bob": tagged_notebook(aws, "ml101-bob"),
        "gpu": launch(aws),
        "key": student_key(aws, "ml101-alice-dlc"),
    }


@pytest.fixture
def strays(aws: Any, course: dict[str, str]) -> dict[str, str]:
    """One of each thing the guard must never touch: untagged, or another course's."""
    return {
        "stray": tagged_notebook(aws, "ml101-stray", tags=None),
        "other": tagged_notebook(aws, "ml101-other", tags=OTHER_TAG),
        "gpu-untagged": launch(aws, tags=None),
        "key-untagged": student_key(aws, "ml101-hand-made", tags=None),
    }


def test_idle_notebooks_are_stopped_and_reported(aws: Any, course: dict[str, str], reports: Any) -> None:
    topic, received = reports
    report = guard(aws, settings(topic), later(61))
    assert {(a.kind, a.target, a.status) for a in report.actions} == {
        (STOP_NOTEBOOK, "ml101-alice", DONE), (STOP_NOTEBOOK, "ml101-bob", DONE)}
    assert report.actions[0].reason.startswith("idle for 61 min")
    assert notebook_status(aws, "ml101-alice") == "Stopped"
    # No CPU metrics for the instance: it is not called idle on a guess.
    assert instance_state(aws, course["gpu"]) == "running"
    message, = received()
    assert message["Subject"] == "labkit ml101 guard: 2 done"
    assert "- done: stop notebook ml101-alice: idle for 61 min" in message["Message"]


def test_untagged_and_other_courses_resources_are_never_touched(aws: Any, course: dict[str, str],
                                                               strays: dict[str, str]) -> None:
    lab_stack(aws, "ml101-LabSageMaker", tags=None)
    report = guard(aws, settings(after_hours="00:00-23:59"), AFTER_EXPIRY)
    touched = {action.target for action in report.actions}
    assert touched == {"ml101-alice", "ml101-bob", course["gpu"], "ml101-alice-dlc"}
    assert (notebook_status(aws, "ml101-stray"), notebook_status(aws, "ml101-other")) == ("InService", "InService")
    assert instance_state(aws, strays["gpu-untagged"]) == "running"
    assert key_status(aws, "ml101-hand-made") == "Active"
    assert stack_status(aws, "ml101-LabSageMaker") == "CREATE_COMPLETE"
    assert report.notes == ["stack ml101-LabSageMaker lacks the tag labkit:course=ml101; not touched"]


def test_dry_run_changes_nothing_and_says_what_it_would_do(aws: Any, course: dict[str, str], reports: Any) -> None:
    topic, received = reports
    lab_stack(aws, "ml101-LabSageMaker")
    report = guard(aws, settings(topic, dry_run=True), AFTER_EXPIRY)
    assert {action.status for action in report.actions} == {WOULD}
    assert {action.kind for action in report.actions} == {STOP_NOTEBOOK, STOP_INSTANCE, DEACTIVATE_KEY, DELETE_STACK}
    assert notebook_status(aws, "ml101-alice") == "InService"
    assert instance_state(aws, course["gpu"]) == "running"
    assert key_status(aws, "ml101-alice-dlc") == "Active"
    assert stack_status(aws, "ml101-LabSageMaker") == "CREATE_COMPLETE"
    message, = received()
    assert message["Subject"].startswith("labkit ml101 guard (dry run): 5 dry run")
    assert "DRY RUN: nothing was changed" in message["Message"]
    # The report names keys without their full id.
    assert f"ml101-alice-dlc/{course['key'][:4]}...{course['key'][-4:]}" in message["Message"]
    assert course["key"] not in message["Message"]


def test_after_hours_stops_notebooks_and_instances_in_the_course_time_zone(aws: Any, course: dict[str, str]) -> None:
    berlin = Policy(timezone="Europe/Berlin").zone()
    night = dt.datetime.now(berlin).replace(hour=23, minute=30) + dt.timedelta(days=1)
    report = guard(aws, settings(after_hours="22:00-06:00", timezone="Europe/Berlin"), night)
    assert {action.target for action in report.of(DONE)} == {"ml101-alice", "ml101-bob", course["gpu"]}
    assert report.actions[0].reason == "after hours (22:00-06:00 Europe/Berlin)"
    assert instance_state(aws, course["gpu"]) == "stopped"


def test_cap_limits_one_run_and_the_next_run_goes_on(aws: Any, course: dict[str, str]) -> None:
    first = guard(aws, settings(max_actions=2), AFTER_EXPIRY)
    assert [a.status for a in first.actions] == [DONE, DONE, CAPPED, CAPPED]
    assert first.notes == ["2 more action(s) wait for the next run (at most 2 per run)"]
    assert instance_state(aws, course["gpu"]) == "running"  # third in line: over the cap
    second = guard(aws, settings(max_actions=2), AFTER_EXPIRY)
    assert [(a.kind, a.status) for a in second.actions] == [(STOP_INSTANCE, DONE), (DEACTIVATE_KEY, DONE)]
    assert key_status(aws, "ml101-alice-dlc") == "Inactive"


def test_expiry_ends_the_course_and_a_rerun_changes_nothing(aws: Any, course: dict[str, str], reports: Any) -> None:
    topic, received = reports
    for name in STACKS:
        lab_stack(aws, name)
    first = guard(aws, settings(topic), AFTER_EXPIRY)
    assert {(a.kind, a.status) for a in first.actions} == {
        (STOP_NOTEBOOK, DONE), (STOP_INSTANCE, DONE), (DEACTIVATE_KEY, DONE), (DELETE_STACK, DONE)}
    assert {stack_status(aws, name) for name in STACKS} == {"DELETE_COMPLETE"}
    assert key_status(aws, "ml101-alice-dlc") == "Inactive"
    assert first.expired and f"the course ended on {EXPIRES}" in first.text()

    again = guard(aws, settings(topic), AFTER_EXPIRY)
    assert again.actions == [] and again.notes == []
    assert len(received()) == 1  # the quiet second run sent nothing


def test_students_stacks_are_found_by_prefix_and_deleted_before_their_class_stack(aws: Any) -> None:
    for name in ("ml101-LabDLAMI", "ml101-LabDLAMI-bob", "ml101-LabDLAMI-alice", "ml101-LabDLAMIX", "ml102-LabDLAMI"):
        lab_stack(aws, name)
    order: list[str] = []
    cfn = aws("cloudformation")
    real_delete = cfn.delete_stack

    def delete(**kwargs: Any) -> Any:
        order.append(kwargs["StackName"])
        return real_delete(**kwargs)

    cfn.delete_stack = delete
    report = guard(aws, settings(stacks=("ml101-LabDLAMI",)), AFTER_EXPIRY)
    assert order == ["ml101-LabDLAMI-alice", "ml101-LabDLAMI-bob", "ml101-LabDLAMI"]
    assert {a.status for a in report.actions if a.kind == DELETE_STACK} == {DONE}
    assert stack_status(aws, "ml101-LabDLAMIX") == stack_status(aws, "ml102-LabDLAMI") == "CREATE_COMPLETE"


def test_a_busy_notebook_is_not_idle(aws: Any) -> None:
    tagged_notebook(aws, "ml101-alice")
    logs = aws("logs")
    logs.create_log_group(logGroupName=handler.NOTEBOOK_LOG_GROUP)
    logs.create_log_stream(logGroupName=handler.NOTEBOOK_LOG_GROUP, logStreamName="ml101-alice/jupyter.log")
    # Jupyter logged a request 30 minutes after the start; at 70 minutes that is 40 minutes of quiet, under 60.
    logs.put_log_events(logGroupName=handler.NOTEBOOK_LOG_GROUP, logStreamName="ml101-alice/jupyter.log",
                        logEvents=[{"timestamp": int(later(30).timestamp() * 1000), "message": "GET /api/kernels"}])
    assert guard(aws, settings(), later(70)).actions == []
    assert [a.target for a in guard(aws, settings(), later(95)).actions] == ["ml101-alice"]


def put_window(aws: Any, instance_id: str, clock: dt.datetime, *, cpu: float | None = 2.0, gpu: float | None = 0.0,
               tty: float | None = 0.0) -> None:
    """A full window of 5-minute points: EC2's CPU, and the agent's GPU and terminal input (None: not published)."""
    for namespace, metric, value in (("AWS/EC2", "CPUUtilization", cpu),
                                     (handler.AGENT_NAMESPACE, handler.GPU_METRIC, gpu),
                                     (handler.AGENT_NAMESPACE, handler.INPUT_METRIC, tty)):
        if value is None:
            continue
        aws("cloudwatch").put_metric_data(Namespace=namespace, MetricData=[
            {"MetricName": metric, "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
             "Timestamp": clock - dt.timedelta(minutes=minutes), "Value": value}
            for minutes in range(5, 60, 5)])


def test_an_instance_is_idle_only_when_cpu_gpu_and_terminals_are(aws: Any) -> None:
    instance_id = launch(aws)
    clock = later(70)
    put_window(aws, instance_id, clock)
    report = guard(aws, settings(dry_run=True), clock)
    assert [(a.target, a.reason) for a in report.actions] == [(
        instance_id, "CPU at most 2.0 % and GPU at most 0.0 % for 60 min, no terminal input (limits 5 %, 5 %)")]
    put_window(aws, instance_id, clock, cpu=40.0)  # one busy point in the window keeps it running
    assert guard(aws, settings(dry_run=True), clock).actions == []


@pytest.mark.parametrize(("signals", "why"), [
    ({"cpu": 3.0, "gpu": 90.0}, "a training loop at 90 % GPU and 3 % CPU"),
    ({"gpu": 6.0}, "GPU just over its threshold"),
    ({"tty": 1.0}, "an open terminal someone typed in"),
    ({"gpu": None}, "no GPU metric: the agent is missing, so it is never called idle"),
    ({"tty": None}, "no terminal metric"),
])
def test_a_busy_signal_or_a_missing_one_keeps_the_instance(aws: Any, signals: dict[str, float | None],
                                                           why: str) -> None:
    instance_id = launch(aws)
    clock = later(70)
    put_window(aws, instance_id, clock, **signals)
    assert guard(aws, settings(dry_run=True), clock).actions == [], why


def test_the_idle_rule_is_the_alarms_expression() -> None:
    rule = handler.IdleRule(cpu_percent=5, gpu_percent=10)
    assert rule.busy(3, 90, 0) >= 1 and rule.busy(3, 9, 0) < 1 and rule.busy(3, 9, 1) >= 1
    assert rule.busy(None, 0, 0) >= 1 and rule.busy(0, None, 0) >= 1 and rule.busy(0, 0, None) >= 1
    assert rule.expression() == "MAX([FILL(cpu, 100) / 5, FILL(gpu, 100) / 10, FILL(tty, 1)])"


def throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)


def stubbed(aws: Any, service: str) -> tuple[Callable[[str], Any], Stubber]:
    """A client factory whose `service` client answers only what the test queues; the rest is moto."""
    client = aws(service)
    stubber = Stubber(client)
    return (lambda name: client if name == service else aws(name)), stubber


NOTEBOOK_ROW = {"NotebookInstanceName": "ml101-alice", "NotebookInstanceStatus": "InService",
                "NotebookInstanceArn": "arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/ml101-alice",
                "LastModifiedTime": dt.datetime(2026, 1, 1, tzinfo=UTC)}


def test_throttling_is_retried_with_backoff(aws: Any) -> None:
    clients, stubber = stubbed(aws, "sagemaker")
    stubber.add_response("list_notebook_instances", {"NotebookInstances": [NOTEBOOK_ROW]})
    stubber.add_response("list_tags", {"Tags": COURSE_TAG})
    for _ in range(2):
        stubber.add_client_error("stop_notebook_instance", "ThrottlingException", http_status_code=400)
    stubber.add_response("stop_notebook_instance", {}, {"NotebookInstanceName": "ml101-alice"})
    slept: list[float] = []
    with stubber:
        report = guard(clients, settings(), later(1), sleep=slept.append)
    assert [a.status for a in report.actions] == [DONE]
    assert slept == [1.0, 2.0]
    stubber.assert_no_pending_responses()


def test_throttling_that_persists_fails_that_action_only(aws: Any) -> None:
    clients, stubber = stubbed(aws, "sagemaker")
    second = {**NOTEBOOK_ROW, "NotebookInstanceName": "ml101-bob",
              "NotebookInstanceArn": NOTEBOOK_ROW["NotebookInstanceArn"].replace("alice", "bob")}
    stubber.add_response("list_notebook_instances", {"NotebookInstances": [NOTEBOOK_ROW, second]})
    stubber.add_response("list_tags", {"Tags": COURSE_TAG})
    stubber.add_response("list_tags", {"Tags": COURSE_TAG})
    for _ in range(Calls().attempts):
        stubber.add_client_error("stop_notebook_instance", "ThrottlingException")
    stubber.add_response("stop_notebook_instance", {}, {"NotebookInstanceName": "ml101-bob"})
    with stubber:
        report = guard(clients, settings(), later(1))
    assert [(a.target, a.status, a.detail) for a in report.actions] == [
        ("ml101-alice", FAILED, "ThrottlingException"), ("ml101-bob", DONE, "")]


def test_every_page_is_read(aws: Any) -> None:
    clients, stubber = stubbed(aws, "sagemaker")
    second = {**NOTEBOOK_ROW, "NotebookInstanceName": "ml101-bob"}
    stubber.add_response("list_notebook_instances", {"NotebookInstances": [NOTEBOOK_ROW], "NextToken": "page-2"})
    stubber.add_response("list_tags", {"Tags": COURSE_TAG})
    stubber.add_response("list_notebook_instances", {"NotebookInstances": [second]},
                         {"NameContains": "ml101", "NextToken": "page-2"})
    stubber.add_response("list_tags", {"Tags": COURSE_TAG})
    with stubber:
        report = guard(clients, settings(dry_run=True), later(1))
    assert [a.target for a in report.actions] == ["ml101-alice", "ml101-bob"]


def test_marker_pages_and_throttled_pages_are_resumed_not_restarted() -> None:
    calls: list[dict[str, Any]] = []
    pages = {None: {"Users": [1, 2], "Marker": "m2"}, "m2": {"Users": [3]}}
    throttled_once = {"m2"}

    def list_users(**kwargs: Any) -> dict[str, Any]:
        calls.append(dict(kwargs))
        marker = kwargs.get("Marker")
        if marker in throttled_once:
            throttled_once.discard(marker)
            raise throttled("ListUsers")
        return pages[marker]

    assert list(Calls(no_sleep).pages(list_users, "Users", token="Marker", PathPrefix=PATH)) == [1, 2, 3]
    assert [call.get("Marker") for call in calls] == [None, "m2", "m2"]


SAGEMAKER_STACK = "ml101-LabSageMaker"
ROLE = settings().teardown_role_arn


def stack_row(status: str) -> dict[str, Any]:
    return {"Stacks": [{"StackName": SAGEMAKER_STACK, "StackStatus": status, "Tags": COURSE_TAG,
                        "CreationTime": dt.datetime(2026, 9, 1, tzinfo=UTC)}]}


def gone() -> tuple[str, str]:
    return "ValidationError", f"Stack with id {SAGEMAKER_STACK} does not exist"


def failed_resources() -> dict[str, Any]:
    stamp = dt.datetime(2026, 9, 1, tzinfo=UTC)
    return {"StackResourceSummaries": [
        {"LogicalResourceId": "aliceStorageBucket", "PhysicalResourceId": "ml101-alice-123456789012-us-east-1",
         "ResourceType": "AWS::S3::Bucket", "ResourceStatus": "DELETE_FAILED", "LastUpdatedTimestamp": stamp},
        {"LogicalResourceId": "aliceRole", "PhysicalResourceId": "ml101-alice-notebook",
         "ResourceType": "AWS::IAM::Role", "ResourceStatus": "DELETE_COMPLETE", "LastUpdatedTimestamp": stamp},
    ]}


def expect_delete(stubber: Stubber, after: str | None, **extra: Any) -> None:
    """One delete_stack call, then the status the next poll sees (None: the stack is gone)."""
    stubber.add_response("delete_stack", {}, {"StackName": SAGEMAKER_STACK, "RoleARN": ROLE, **extra})
    if after is None:
        code, message = gone()
        stubber.add_client_error("describe_stacks", code, message)
    else:
        stubber.add_response("describe_stacks", stack_row(after), {"StackName": SAGEMAKER_STACK})


def listed(stubber: Stubber, status: str) -> None:
    """The guard first lists the account's stacks to find the course's by name."""
    stubber.add_response("list_stacks", {"StackSummaries": [{
        "StackName": SAGEMAKER_STACK, "StackStatus": status, "CreationTime": dt.datetime(2026, 9, 1, tzinfo=UTC)}]})


def fails_twice(stubber: Stubber, status: str) -> None:
    """The stack is found in `status`; deleting it fails, and so does the retry; the bucket is what failed."""
    listed(stubber, status)
    stubber.add_response("describe_stacks", stack_row(status), {"StackName": SAGEMAKER_STACK})
    expect_delete(stubber, "DELETE_FAILED")
    expect_delete(stubber, "DELETE_FAILED")
    stubber.add_response("list_stack_resources", failed_resources(), {"StackName": SAGEMAKER_STACK})


def test_delete_failed_is_retried_then_deleted_keeping_the_student_bucket(aws: Any) -> None:
    clients, stubber = stubbed(aws, "cloudformation")
    fails_twice(stubber, "CREATE_COMPLETE")
    expect_delete(stubber, None, RetainResources=["aliceStorageBucket"])
    with stubber:
        report = guard(clients, settings(stacks=(SAGEMAKER_STACK,)), AFTER_EXPIRY)
    stubber.assert_no_pending_responses()
    action, = report.actions
    assert (action.kind, action.status) == (DELETE_STACK, DONE)
    assert action.detail == ("kept for labctl teardown (archive first): AWS::S3::Bucket "
                             "ml101-alice-123456789012-us-east-1")


def test_delete_failed_even_when_keeping_what_failed_is_a_failure(aws: Any) -> None:
    clients, stubber = stubbed(aws, "cloudformation")
    fails_twice(stubber, "DELETE_FAILED")  # a stack an earlier run left in DELETE_FAILED: the first try is the retry
    expect_delete(stubber, "DELETE_FAILED", RetainResources=["aliceStorageBucket"])
    with stubber:
        action, = guard(clients, settings(stacks=(SAGEMAKER_STACK,)), AFTER_EXPIRY).actions
    assert action.status == FAILED and "DELETE_FAILED even when keeping what failed" in action.detail


def test_a_slow_delete_is_left_for_the_next_run(aws: Any) -> None:
    clients, stubber = stubbed(aws, "cloudformation")
    listed(stubber, "CREATE_COMPLETE")
    stubber.add_response("describe_stacks", stack_row("CREATE_COMPLETE"), {"StackName": SAGEMAKER_STACK})
    expect_delete(stubber, "DELETE_IN_PROGRESS")
    stubber.add_response("describe_stacks", stack_row("DELETE_IN_PROGRESS"), {"StackName": SAGEMAKER_STACK})
    with stubber:
        action, = guard(clients, settings(stacks=(SAGEMAKER_STACK,)), AFTER_EXPIRY, max_polls=1).actions
    assert (action.status, action.detail) == (IN_PROGRESS, "DELETE_IN_PROGRESS; the next run checks again")

    clients, stubber = stubbed(aws, "cloudformation")
    listed(stubber, "DELETE_IN_PROGRESS")
    stubber.add_response("describe_stacks", stack_row("DELETE_IN_PROGRESS"), {"StackName": SAGEMAKER_STACK})
    with stubber:
        report = guard(clients, settings(stacks=(SAGEMAKER_STACK,)), AFTER_EXPIRY)
    assert report.actions == [] and report.notes == [f"stack {SAGEMAKER_STACK} is DELETE_IN_PROGRESS; the next "
                                                     "run looks again"]


def test_settings_round_trip_through_the_environment() -> None:
    original = settings("arn:aws:sns:us-east-1:123456789012:t", after_hours="20:00-07:00",
                        timezone="Europe/Berlin", max_actions=9)
    assert Settings.from_env(original.to_env()) == original
    assert Settings.from_env(settings("t").to_env()).policy.after_hours == ""


def test_missing_or_bad_environment_fails_loudly_by_name() -> None:
    env = settings("t").to_env()
    with pytest.raises(SettingsError, match="missing environment variables: LABKIT_COURSE, LABKIT_TOPIC_ARN"):
        Settings.from_env({**env, "LABKIT_COURSE": "", "LABKIT_TOPIC_ARN": ""})
    with pytest.raises(SettingsError, match="LABKIT_DRY_RUN 'yes' must be true or false"):
        Settings.from_env({**env, "LABKIT_DRY_RUN": "yes"})
    with pytest.raises(SettingsError, match="invalid environment: .*timezone 'Nowhere/City'"):
        Settings.from_env({**env, "LABKIT_TIMEZONE": "Nowhere/City"})


@pytest.mark.parametrize(("window", "clock", "inside"), [
    ("22:00-06:00", "23:15", True), ("22:00-06:00", "05:59", True), ("22:00-06:00", "06:00", False),
    ("22:00-06:00", "12:00", False), ("12:00-13:00", "12:30", True), ("12:00-13:00", "13:00", False),
    ("", "03:00", False),
])
def test_after_hours_window_may_wrap_midnight(window: str, clock: str, inside: bool) -> None:
    moment = dt.datetime.combine(dt.date(2026, 11, 25), dt.time.fromisoformat(clock))
    assert Policy(after_hours=window).is_after_hours(moment) is inside


def test_clock_must_carry_a_time_zone(aws: Any) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run(settings(), aws, now=dt.datetime(2026, 11, 25, 12))


def test_shared_constants_agree_with_labkit() -> None:
    from lab_scripts.audit import NOTEBOOK_LOG_GROUP
    from course.naming import TAG_COURSE

    assert (handler.TAG_COURSE, handler.NOTEBOOK_LOG_GROUP) == (TAG_COURSE, NOTEBOOK_LOG_GROUP)


def test_lambda_entry_point_reads_its_environment(aws: Any, course: dict[str, str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in settings(dry_run=True).to_env().items():
        monkeypatch.setenv(name, value or "none")
    handler._runtime.cache_clear()
    try:
        summary = handler.lambda_handler({"source": "aws.events"}, None)
    finally:
        handler._runtime.cache_clear()
    assert summary == {"course": "ml101", "dry_run": True, "expired": False}


# -- the spend meter and the caps ---------------------------------------------------------------------------------
PRICES = (("g4dn.xlarge", 0.5), ("ml.t3.medium", 0.06))


def morning_zone() -> str:
    """An IANA zone where it is about 03:00 now, so these tests never cross a local midnight by accident."""
    offset = 3 - dt.datetime.now(UTC).hour
    offset = offset + 24 if offset < -12 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


def capped(**caps: Any) -> Settings:
    config = settings(timezone=morning_zone(), idle_minutes=1440, **caps)
    return dataclasses.replace(config, prices=PRICES)


def student_instance(aws: Any, student: str) -> str:
    return launch(aws, COURSE_TAG + [{"Key": "labkit:student", "Value": student}])


def tags_of(aws: Any, instance_id: str) -> dict[str, str]:
    reservation = aws("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]
    return {t["Key"]: t["Value"] for t in reservation["Instances"][0].get("Tags", [])}


def test_a_student_is_stopped_at_the_cap_not_before_and_no_one_else(aws: Any) -> None:
    alice, bob = student_instance(aws, "alice"), student_instance(aws, "bob")
    config = capped(max_usd_per_student_day=1.0)
    # 0.5 USD/h: 110 minutes are 0.92 USD, under the cap; nothing happens.
    report = guard(aws, config, later(110))
    assert report.actions == []
    assert round(report.spend["today"]["alice"], 2) == 0.92
    aws("ec2").stop_instances(InstanceIds=[bob])  # bob stops on his own; alice keeps running
    report = guard(aws, config, later(125))
    assert [(a.kind, a.target, a.status) for a in report.actions] == [
        (STOP_INSTANCE, alice, DONE), (handler.WITHHOLD_START, alice, DONE)]
    assert "spend cap: alice spent 1.04 USD today (cap 1.00 USD per student and day)" in report.actions[0].reason
    assert instance_state(aws, alice) == "stopped"
    assert tags_of(aws, alice)["labkit:capped"] == later(125).astimezone(config.policy.zone()).date().isoformat()
    assert "labkit:capped" not in tags_of(aws, bob)
    # The ledger holds the open session; the next run closes it at the stop time EC2 reports (moto stamps it
    # with the real time, so the amount is not checked here: bench/idle.py checks it on a simulated term).
    assert handler.Ledger.parse(tags_of(aws, alice)["labkit:spend"]).since > 0
    assert guard(aws, config, later(180)).actions == []
    assert handler.Ledger.parse(tags_of(aws, alice)["labkit:spend"]).since == 0


def test_the_cap_is_lifted_the_next_day_and_by_the_instructor(aws: Any) -> None:
    from lab_scripts.guard import allow_student

    alice = student_instance(aws, "alice")
    config = capped(max_usd_per_student_day=1.0)
    guard(aws, config, later(125))
    assert "labkit:capped" in tags_of(aws, alice)
    # The instructor lifts it: the mark says so, and the guard does not cap alice again today.
    assert allow_student(aws, "ml101", "alice", config.policy, now=later(130)) == [alice]
    aws("ec2").start_instances(InstanceIds=[alice])
    assert guard(aws, config, later(140)).actions == []
    # The next day (alice stopped in the evening) the mark goes, and today's spend starts from zero.
    aws("ec2").stop_instances(InstanceIds=[alice])
    report = guard(aws, config, later(125 + 24 * 60))
    assert [(a.kind, a.target) for a in report.actions][-1] == (handler.LIFT_CAP, alice)
    assert "labkit:capped" not in tags_of(aws, alice)


def test_the_class_cap_stops_everyone(aws: Any) -> None:
    alice, bob = student_instance(aws, "alice"), student_instance(aws, "bob")
    report = guard(aws, capped(max_usd_class_day=1.5), later(95))  # 2 x 0.79 USD
    assert {a.target for a in report.actions if a.kind == STOP_INSTANCE} == {alice, bob}
    assert all(a.reason.startswith("class spend cap: 1.58 USD today") for a in report.actions)


def test_without_a_cap_nothing_is_metered(aws: Any) -> None:
    alice = student_instance(aws, "alice")
    report = guard(aws, dataclasses.replace(settings(idle_minutes=1440), prices=PRICES), later(600))
    assert report.actions == [] and report.spend == {} and "labkit:spend" not in tags_of(aws, alice)


def test_caps_and_prices_round_trip_through_the_environment() -> None:
    config = dataclasses.replace(capped(max_usd_per_student_day=2.5), topic_arn="arn:aws:sns:us-east-1:1:t")
    assert Settings.from_env(config.to_env()) == config
    legacy = {k: v for k, v in config.to_env().items() if k not in Settings.OPTIONAL.values()}
    assert Settings.from_env(legacy).policy.max_usd_per_student_day is None
    with pytest.raises(SettingsError, match="max_usd_class_day -1"):
        Policy(max_usd_class_day=-1)


def test_the_ledger_counts_a_session_it_never_saw_running() -> None:
    ledger = handler.Ledger.parse("day=2026-12-01 today=0.5000 total=3.0000 since=0 counted=10")
    assert ledger == handler.Ledger("2026-12-01", 0.5, 3.0, 0, 10)
    assert handler.Ledger.parse(ledger.text()) == ledger
    assert handler.Ledger.parse("garbage") == handler.Ledger()


def test_a_capped_students_notebook_is_stopped_and_marked(aws: Any) -> None:
    name = tagged_notebook(aws, "ml101-alice", COURSE_TAG + [{"Key": "labkit:student", "Value": "alice"}])
    tagged_notebook(aws, "ml101-bob", COURSE_TAG + [{"Key": "labkit:student", "Value": "bob"}])
    aws("sagemaker").stop_notebook_instance(NotebookInstanceName="ml101-bob")  # bob stopped at once: no spend
    config = capped(max_usd_per_student_day=0.1)  # ml.t3.medium at 0.06 USD/h: 0.11 USD after 110 minutes
    report = guard(aws, config, later(110))
    assert {(a.kind, a.target) for a in report.actions} == {(STOP_NOTEBOOK, name), (handler.WITHHOLD_START, name)}
    arn = aws("sagemaker").describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceArn"]
    tags = {t["Key"]: t["Value"] for t in aws("sagemaker").list_tags(ResourceArn=arn)["Tags"]}
    assert tags["labkit:capped"] == later(110).astimezone(config.policy.zone()).date().isoformat()
    bob = aws("sagemaker").describe_notebook_instance(NotebookInstanceName="ml101-bob")["NotebookInstanceArn"]
    assert "labkit:capped" not in {t["Key"] for t in aws("sagemaker").list_tags(ResourceArn=bob)["Tags"]}


def test_a_dry_run_reports_the_cap_and_changes_nothing(aws: Any) -> None:
    alice = student_instance(aws, "alice")
    report = guard(aws, capped(max_usd_per_student_day=1.0, dry_run=True), later(125))
    assert [(a.kind, a.status) for a in report.actions] == [(STOP_INSTANCE, WOULD), (handler.WITHHOLD_START, WOULD)]
    assert instance_state(aws, alice) == "running" and set(tags_of(aws, alice)) == {"labkit:course", "labkit:student"}


def test_account_per_student_the_guard_stops_machines_in_each_students_account(
        aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the stop-only role in the student's account (found by the class stack set's instances): the
    student's running GPU instance and notebook stop after hours; the class account's own run goes on as before."""
    from labkit.emulator_stackset import patch_stack_sets
    from lab_scripts.organization import account_clients, ensure_ou, ensure_student_accounts

    patch_stack_sets(monkeypatch.setattr)
    org = aws("organizations")
    org.create_organization(FeatureSet="ALL")
    ou = ensure_ou(org, "ml101-students")
    account = ensure_student_accounts(org, ou, "ml101", [("ada", "ada@example.edu", None)], echo=lambda _: None)["ada"]
    aws("cloudformation").create_stack(StackName="ml101-LabClassroom", TemplateBody=json.dumps({"Resources": {
        "Students": {"Type": "AWS::CloudFormation::StackSet", "Properties": {
            "StackSetName": "ml101-LabStudent", "PermissionModel": "SERVICE_MANAGED",
            "AutoDeployment": {"Enabled": True}, "TemplateBody": json.dumps({"Resources": {
                "Topic": {"Type": "AWS::SNS::Topic"}}}),
            "StackInstancesGroup": [{"DeploymentTargets": {"OrganizationalUnitIds": [ou]},
                                     "Regions": ["us-east-1"]}]}}}}))
    student = account_clients(aws("sts"), account, region="us-east-1")
    gpu = launch(student)
    notebook = tagged_notebook(student, "ml101-student")
    mine = launch(aws)
    config = dataclasses.replace(settings(after_hours="00:00-23:59"), student_stack_set="ml101-LabStudent",
                                 student_role="ml101-guard-stop")
    report = guard(aws, config, later(1))
    done = {(action.kind, action.target, action.account) for action in report.of(DONE)}
    assert done == {(STOP_INSTANCE, gpu, account), (STOP_NOTEBOOK, notebook, account), (STOP_INSTANCE, mine, "")}
    assert f"{gpu} (account {account})" in report.text()
    assert student("ec2").describe_instances(InstanceIds=[gpu])["Reservations"][0]["Instances"][0]["State"][
        "Name"] in {"stopping", "stopped"}
    assert notebook_status(student, notebook) in {"Stopping", "Stopped"}


def test_without_a_class_stack_set_the_guard_stays_in_its_account(aws: Any) -> None:
    config = dataclasses.replace(settings(after_hours="00:00-23:59"), student_stack_set="ml101-LabStudent",
                                 student_role="ml101-guard-stop")
    assert guard(aws, config, later(1)).actions == []


def test_the_student_account_settings_travel_only_when_set() -> None:
    plain = settings("arn:aws:sns:us-east-1:123456789012:t")
    config = dataclasses.replace(plain, student_stack_set="ml101-LabStudent", student_role="ml101-guard-stop")
    assert Settings.from_env(config.to_env()) == config
    assert "LABKIT_STUDENT_ROLE" not in plain.to_env() and Settings.from_env(plain.to_env()) == plain
