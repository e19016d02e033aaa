"""The course's teardown guard: stop idle and after-hours lab machines; end the course on its expiry date.

This folder is LabGuard's Lambda asset, so the module is self-contained: stdlib and boto3, no labkit.
`run` takes its clients, clock and sleep as arguments, so tests, `labctl guard run` and the emulator demo
run exactly this code.

Safety rules: only resources carrying the course tag are touched; a dry run changes nothing; one run
touches at most `max_actions` resources; stacks are deleted by CloudFormation with the teardown role, and
what CloudFormation cannot delete (a student bucket that still holds work) is kept, never emptied here,
for `labctl teardown` to archive. Every run is idempotent: what is already stopped, inactive or deleted
is not planned again.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botocore.exceptions import ClientError

logger = logging.getLogger("labkit.guard")
logger.setLevel(logging.INFO)

ClientFactory = Callable[[str], Any]

# Same values as course.naming.TAG_COURSE and lab_scripts.audit.NOTEBOOK_LOG_GROUP (a test keeps them equal).
TAG_COURSE = "labkit:course"
NOTEBOOK_LOG_GROUP = "/aws/sagemaker/NotebookInstances"
THROTTLING = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded", "TooManyRequestsException",
    "RequestThrottled", "RequestThrottledException", "SlowDown",
})

STOP_NOTEBOOK, STOP_INSTANCE = "stop notebook", "stop instance"
DEACTIVATE_KEY, DELETE_STACK = "deactivate access key", "delete stack"
# What happened to a planned action.
PLANNED, DONE, WOULD, CAPPED, FAILED, IN_PROGRESS = "planned", "done", "dry run", "over cap", "failed", "in progress"

_CLOCK = r"([01]\d|2[0-3]):[0-5]\d"
# CloudWatch basic monitoring publishes EC2 CPU every 5 minutes; fewer points than one per 10 minutes means
# the window is not covered, and the instance is left alone rather than stopped on a guess.
_POINTS_PER_MINUTE = 1 / 10


class SettingsError(ValueError):
    """The function's environment or policy is invalid; the message names the setting."""


@dataclass(frozen=True)
class Policy:
    """What the guard may do: lab.toml's [guard] table, the same type there and in the function."""

    # On unless a course file says otherwise: a guard that has never run for a course only reports.
    dry_run: bool = True
    idle_minutes: int = 120
    after_hours: str = ""  # "HH:MM-HH:MM" local time, may wrap midnight; "" = no after-hours stop
    timezone: str = "UTC"
    max_actions: int = 50

    def __post_init__(self) -> None:
        if not 15 <= self.idle_minutes <= 1440:
            raise SettingsError(f"idle_minutes {self.idle_minutes} must be between 15 and 1440")
        if not 1 <= self.max_actions <= 1000:
            raise SettingsError(f"max_actions {self.max_actions} must be between 1 and 1000")
        self.window()
        self.zone()

    def zone(self) -> dt.tzinfo:
        if self.timezone == "UTC":
            return dt.timezone.utc
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"timezone {self.timezone!r} is not an IANA time zone (e.g. Europe/Berlin)") from None

    def window(self) -> tuple[dt.time, dt.time] | None:
        if not self.after_hours:
            return None
        if not re.fullmatch(f"{_CLOCK}-{_CLOCK}", self.after_hours):
            raise SettingsError(f"after_hours {self.after_hours!r} must be HH:MM-HH:MM local time (e.g. 20:00-07:00)")
        start, end = (dt.time.fromisoformat(part) for part in self.after_hours.split("-"))
        if start == end:
            raise SettingsError(f"after_hours {self.after_hours!r} is an empty window")
        return start, end

    def is_after_hours(self, local: dt.datetime) -> bool:
        window = self.window()
        if window is None:
            return False
        start, end = window
        now = local.time()
        return start <= now < end if start < end else (now >= start or now < end)


@dataclass(frozen=True)
class Settings:
    """The function's whole configuration. The stack renders it with `to_env`, the function reads it back."""

    course: str
    expires: dt.date
    # The lab stacks' name prefixes: `<course>-<lab>` is a class stack, `<course>-<lab>-<student>` a student's.
    # Prefixes rather than names keep the environment small whatever the class size, and cover students added
    # after the guard was deployed.
    stacks: tuple[str, ...]
    iam_path: str
    topic_arn: str = ""
    teardown_role_arn: str = ""
    idle_cpu_percent: int = 5
    policy: Policy = Policy()

    # Field -> environment variable; policy fields are read from the same environment.
    ENV = {name: f"LABKIT_{name.upper()}" for name in (
        "course", "expires", "stacks", "iam_path", "topic_arn", "teardown_role_arn", "idle_cpu_percent", "dry_run",
        "idle_minutes", "after_hours", "timezone", "max_actions")}

    def to_env(self) -> dict[str, str]:
        policy = self.policy
        text = {"expires": self.expires.isoformat(), "stacks": ",".join(self.stacks),
                "dry_run": str(policy.dry_run).lower(), "after_hours": policy.after_hours or "off"}
        values = {**{name: str(getattr(self, name)) for name in ("course", "iam_path", "topic_arn",
                                                                  "teardown_role_arn", "idle_cpu_percent")},
                  **{name: str(getattr(policy, name)) for name in ("idle_minutes", "timezone", "max_actions")},
                  **text}
        return {variable: values[name] for name, variable in self.ENV.items()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the function's environment; fail loudly, naming every missing variable, at cold start."""
        source = os.environ if environ is None else environ
        raw = {name: source.get(variable, "") for name, variable in cls.ENV.items()}
        absent = [cls.ENV[name] for name, value in raw.items() if not value]
        if absent:
            raise SettingsError(f"missing environment variables: {', '.join(absent)}")
        if raw["dry_run"] not in {"true", "false"}:
            raise SettingsError(f"LABKIT_DRY_RUN {raw['dry_run']!r} must be true or false")
        try:
            policy = Policy(raw["dry_run"] == "true", int(raw["idle_minutes"]),
                            "" if raw["after_hours"] == "off" else raw["after_hours"], raw["timezone"],
                            int(raw["max_actions"]))
            return cls(raw["course"], dt.date.fromisoformat(raw["expires"]), tuple(raw["stacks"].split(",")),
                       raw["iam_path"], raw["topic_arn"], raw["teardown_role_arn"], int(raw["idle_cpu_percent"]),
                       policy)
        except ValueError as exc:
            raise SettingsError(f"invalid environment: {exc}") from None


@dataclass(frozen=True)
class Action:
    """One change the guard plans: what, on which resource, why, and (after the run) what happened."""

    kind: str
    target: str
    reason: str
    status: str = PLANNED
    detail: str = ""
    key_id: str = ""  # for access keys: the key of user `target`

    @property
    def label(self) -> str:
        # Enough of a key id to tell keys apart in a report, not enough to look one up by.
        return f"{self.target}/{self.key_id[:4]}...{self.key_id[-4:]}" if self.key_id else self.target


@dataclass
class Report:
    """What one run found and did; `text` is what the SNS topic and the log receive."""

    course: str
    at: dt.datetime
    dry_run: bool
    expires: dt.date
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def expired(self) -> bool:
        return self.at.date() > self.expires

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for action in self.actions:
            counts[action.status] = counts.get(action.status, 0) + 1
        return counts

    def of(self, status: str) -> list[Action]:
        return [action for action in self.actions if action.status == status]

    @property
    def subject(self) -> str:
        done = ", ".join(f"{count} {status}" for status, count in self.counts().items()) or "nothing to do"
        # SNS subjects: at most 100 printable ASCII characters.
        return f"labkit {self.course} guard{' (dry run)' if self.dry_run else ''}: {done}"[:100]

    def text(self) -> str:
        state = f"the course ended on {self.expires}" if self.expired else f"course running until {self.expires}"
        lines = [f"{self.course} at {self.at:%Y-%m-%d %H:%M %Z}: {state}"]
        if self.dry_run:
            lines.append("DRY RUN: nothing was changed (set guard.dry_run = false in the course file to act)")
        lines += [f"- {a.status}: {a.kind} {a.label}: {a.reason}{f' ({a.detail})' if a.detail else ''}"
                  for a in self.actions]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        return {"course": self.course, "dry_run": self.dry_run, "expired": self.expired, **self.counts()}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class Calls:
    """Every AWS call of a run goes through here: throttling is retried with capped exponential backoff.

    botocore's standard retry mode already retries throttling in the function; this layer covers bursts
    beyond it (a class of 60 notebooks stopped in one run) and gives tests one seam to inject throttling.
    No jitter: a run is a single caller (reserved concurrency 1).
    """

    sleep: Callable[[float], None] = time.sleep
    attempts: int = 5
    base: float = 1.0
    cap: float = 20.0

    def __call__(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        for attempt in range(1, self.attempts + 1):
            try:
                return method(**kwargs)
            except ClientError as exc:
                if error_code(exc) not in THROTTLING or attempt == self.attempts:
                    raise
                delay = min(self.cap, self.base * 2 ** (attempt - 1))
                logger.warning("throttled (%s); retry %d of %d in %.0f s", error_code(exc), attempt,
                               self.attempts - 1, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")

    def pages(self, method: Callable[..., Any], items: str, token: str = "NextToken", **kwargs: Any) -> Iterator[Any]:
        """Every item of a paged list call; each page is retried on its own, so a throttle never restarts."""
        while True:
            page = self(method, **kwargs)
            yield from page.get(items, [])
            next_token = page.get(token)
            if not next_token:
                return
            kwargs[token] = next_token


def _tagged(tags: list[dict[str, str]], course: str) -> bool:
    return any(tag.get("Key") == TAG_COURSE and tag.get("Value") == course for tag in tags)


class Guard:
    """One run: plan from the tagged resources, cap, act (or only report, in a dry run), publish the report."""

    def __init__(self, settings: Settings, clients: ClientFactory, *, now: dt.datetime,
                 sleep: Callable[[float], None] = time.sleep, poll_seconds: float = 15, max_polls: int = 40) -> None:
        # One client per service for the run, whatever the factory does.
        self.settings, self.policy, self.clients = settings, settings.policy, functools.cache(clients)
        self.now = now
        self.local = now.astimezone(self.policy.zone())
        self.expired = self.local.date() > settings.expires
        self.call = Calls(sleep)
        self.sleep, self.poll_seconds, self.max_polls = sleep, poll_seconds, max_polls
        self.notes: list[str] = []

    # -- planning: read-only --------------------------------------------------------------------------------
    def _stop_reason(self, idle: Callable[[], str | None]) -> str | None:
        if self.expired:
            return f"the course ended on {self.settings.expires}"
        if self.policy.is_after_hours(self.local):
            return f"after hours ({self.policy.after_hours} {self.policy.timezone})"
        return idle()

    def _last_jupyter_event(self, name: str) -> dt.datetime | None:
        """Jupyter logs every request of an open browser tab and kernel; its newest event is the last use."""
        logs = self.clients("logs")
        try:
            streams = list(self.call.pages(logs.describe_log_streams, "logStreams", token="nextToken",
                                           logGroupName=NOTEBOOK_LOG_GROUP, logStreamNamePrefix=f"{name}/"))
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        stamps = [stream["lastEventTimestamp"] for stream in streams if stream.get("lastEventTimestamp")]
        return dt.datetime.fromtimestamp(max(stamps) / 1000, dt.timezone.utc) if stamps else None

    def _notebook_idle(self, notebook: dict[str, Any]) -> str | None:
        last = notebook["LastModifiedTime"]
        activity = self._last_jupyter_event(notebook["NotebookInstanceName"])
        if activity and activity > last:
            last = activity
        minutes = (self.now - last).total_seconds() / 60
        if minutes < self.policy.idle_minutes:
            return None
        return f"idle for {minutes:.0f} min (no start, stop or Jupyter activity; limit {self.policy.idle_minutes})"

    def notebooks(self) -> list[Action]:
        sm, course = self.clients("sagemaker"), self.settings.course
        planned = []
        for notebook in self.call.pages(sm.list_notebook_instances, "NotebookInstances", NameContains=course):
            name = notebook["NotebookInstanceName"]
            if notebook["NotebookInstanceStatus"] != "InService" or not name.startswith(f"{course}-"):
                continue
            if not _tagged(self.call(sm.list_tags, ResourceArn=notebook["NotebookInstanceArn"])["Tags"], course):
                continue
            reason = self._stop_reason(lambda: self._notebook_idle(notebook))
            if reason:
                planned.append(Action(STOP_NOTEBOOK, name, reason))
        return planned

    def _instance_idle(self, instance: dict[str, Any]) -> str | None:
        minutes, limit = self.policy.idle_minutes, self.settings.idle_cpu_percent
        start = self.now - dt.timedelta(minutes=minutes)
        if instance["LaunchTime"] > start:
            return None
        points = self.call(
            self.clients("cloudwatch").get_metric_statistics, Namespace="AWS/EC2", MetricName="CPUUtilization",
            Dimensions=[{"Name": "InstanceId", "Value": instance["InstanceId"]}], StartTime=start, EndTime=self.now,
            Period=300, Statistics=["Maximum"],
        )["Datapoints"]
        if len(points) < max(1, int(minutes * _POINTS_PER_MINUTE)):
            logger.info("%s: %d CPU datapoints in %d min; not enough to call it idle", instance["InstanceId"],
                        len(points), minutes)
            return None
        peak = max(point["Maximum"] for point in points)
        return f"CPU at most {peak:.1f} % for {minutes} min (limit {limit} %)" if peak < limit else None

    def instances(self) -> list[Action]:
        ec2, course = self.clients("ec2"), self.settings.course
        filters = [{"Name": f"tag:{TAG_COURSE}", "Values": [course]},
                   {"Name": "instance-state-name", "Values": ["running"]}]
        planned = []
        for reservation in self.call.pages(ec2.describe_instances, "Reservations", Filters=filters):
            for instance in reservation["Instances"]:
                # The filter is the service's promise; the tag check is ours.
                if instance["State"]["Name"] != "running" or not _tagged(instance.get("Tags", []), course):
                    continue
                reason = self._stop_reason(lambda: self._instance_idle(instance))
                if reason:
                    planned.append(Action(STOP_INSTANCE, instance["InstanceId"], reason))
        return planned

    def access_keys(self) -> list[Action]:
        iam, course = self.clients("iam"), self.settings.course
        reason = f"the course ended on {self.settings.expires}"
        planned = []
        for user in self.call.pages(iam.list_users, "Users", token="Marker", PathPrefix=self.settings.iam_path):
            name = user["UserName"]
            if not _tagged(self.call(iam.list_user_tags, UserName=name)["Tags"], course):
                continue
            for key in self.call.pages(iam.list_access_keys, "AccessKeyMetadata", token="Marker", UserName=name):
                if key["Status"] == "Active":
                    planned.append(Action(DEACTIVATE_KEY, name, reason, key_id=key["AccessKeyId"]))
        return planned

    def _stack(self, name: str) -> dict[str, Any] | None:
        try:
            stacks = self.call(self.clients("cloudformation").describe_stacks, StackName=name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return None
            raise
        return stacks[0] if stacks and stacks[0]["StackStatus"] != "DELETE_COMPLETE" else None

    def _lab_stack_names(self) -> list[str]:
        """Live stacks named like a guarded lab, students' before class stacks: a student's GPU stack imports
        the class network, so the class stack can only go once the students' stacks are gone."""
        cfn = self.clients("cloudformation")
        live = {summary["StackName"] for summary in self.call.pages(cfn.list_stacks, "StackSummaries")
                if summary["StackStatus"] != "DELETE_COMPLETE"}
        ours = [name for name in live for prefix in self.settings.stacks
                if name == prefix or name.startswith(f"{prefix}-")]
        return sorted(ours, key=lambda name: (self.is_class_stack(name), name))

    def is_class_stack(self, name: str) -> bool:
        return name in self.settings.stacks

    def stacks(self) -> list[Action]:
        planned = []
        for name in self._lab_stack_names():
            stack = self._stack(name)
            if stack is None:
                continue
            status = stack["StackStatus"]
            if not _tagged(stack.get("Tags", []), self.settings.course):
                self.notes.append(f"stack {name} lacks the tag {TAG_COURSE}={self.settings.course}; not touched")
            elif status.endswith("_IN_PROGRESS"):
                self.notes.append(f"stack {name} is {status}; the next run looks again")
            else:
                planned.append(Action(DELETE_STACK, name, f"the course ended on {self.settings.expires}"))
        return planned

    def plan(self) -> list[Action]:
        """Stops first (they end the hourly charges), then keys (they end access), then stacks."""
        planned = self.notebooks() + self.instances()
        if self.expired:
            planned += self.access_keys() + self.stacks()
        return planned

    # -- acting ---------------------------------------------------------------------------------------------
    def _act(self, action: Action) -> Action:
        if action.kind == STOP_NOTEBOOK:
            self.call(self.clients("sagemaker").stop_notebook_instance, NotebookInstanceName=action.target)
        elif action.kind == STOP_INSTANCE:
            self.call(self.clients("ec2").stop_instances, InstanceIds=[action.target])
        else:
            self.call(self.clients("iam").update_access_key, UserName=action.target, AccessKeyId=action.key_id,
                      Status="Inactive")
        return replace(action, status=DONE)

    def _status(self, name: str) -> str:
        stack = self._stack(name)
        return "DELETE_COMPLETE" if stack is None else str(stack["StackStatus"])

    def _await(self, names: list[str]) -> dict[str, str]:
        """Each stack's status once it stops changing, or IN_PROGRESS when the polls run out."""
        done: dict[str, str] = {}
        for poll in range(self.max_polls + 1):
            for name in names:
                status = done.get(name) or self._status(name)
                if not status.endswith("_IN_PROGRESS"):
                    done[name] = status
            if len(done) == len(names) or poll == self.max_polls:
                break
            self.sleep(self.poll_seconds)
        return {name: done.get(name, "DELETE_IN_PROGRESS") for name in names}

    def _failed_resources(self, name: str) -> list[dict[str, Any]]:
        cfn = self.clients("cloudformation")
        rows = self.call.pages(cfn.list_stack_resources, "StackResourceSummaries", StackName=name)
        return [row for row in rows if row.get("ResourceStatus") == "DELETE_FAILED"]

    def _delete_stacks(self, actions: list[Action]) -> list[Action]:
        """Delete; on DELETE_FAILED delete once more (most failures are transient); then delete keeping only
        what failed, e.g. a non-empty student bucket, which `labctl teardown` archives and deletes later."""
        cfn = self.clients("cloudformation")
        role = {"RoleARN": self.settings.teardown_role_arn} if self.settings.teardown_role_arn else {}
        results: dict[str, tuple[str, str]] = {}
        kept: dict[str, list[dict[str, Any]]] = {}
        pending = [action.target for action in actions]
        for attempt in ("delete", "retry", "retain"):
            if not pending:
                break
            started = []
            for name in pending:
                extra: dict[str, Any] = {}
                if attempt == "retain":
                    kept[name] = self._failed_resources(name)
                    extra["RetainResources"] = [row["LogicalResourceId"] for row in kept[name]]
                try:
                    self.call(cfn.delete_stack, StackName=name, **role, **extra)
                    started.append(name)
                except ClientError as exc:
                    results[name] = (FAILED, f"{attempt}: {error_code(exc)}")
            pending = []
            for name, status in self._await(started).items():
                if status == "DELETE_FAILED":
                    pending.append(name)
                elif status == "DELETE_COMPLETE":
                    results[name] = (DONE, _kept_detail(kept.get(name, [])))
                else:
                    results[name] = (IN_PROGRESS, f"{status}; the next run checks again")
        for name in pending:
            results[name] = (FAILED, "DELETE_FAILED even when keeping what failed; see the stack's events")
        return [replace(action, status=results[action.target][0], detail=results[action.target][1])
                for action in actions]

    def run(self) -> Report:
        report = Report(self.settings.course, self.local, self.policy.dry_run, self.settings.expires, notes=self.notes)
        planned = self.plan()
        allowed, over = planned[: self.policy.max_actions], planned[self.policy.max_actions:]
        if self.policy.dry_run:
            report.actions += [replace(action, status=WOULD) for action in allowed]
        else:
            for action in (a for a in allowed if a.kind != DELETE_STACK):
                try:
                    report.actions.append(self._act(action))
                except ClientError as exc:
                    report.actions.append(replace(action, status=FAILED, detail=error_code(exc)))
            deletes = [a for a in allowed if a.kind == DELETE_STACK]
            # Students' stacks first, then the class stacks they import from.
            report.actions += self._delete_stacks([a for a in deletes if not self.is_class_stack(a.target)])
            report.actions += self._delete_stacks([a for a in deletes if self.is_class_stack(a.target)])
        report.actions += [replace(action, status=CAPPED) for action in over]
        if over:
            self.notes.append(f"{len(over)} more action(s) wait for the next run (at most "
                              f"{self.policy.max_actions} per run)")
        for action in report.actions:
            logger.info(json.dumps({key: value for key, value in asdict(action).items() if key != "key_id"}
                                   | {"target": action.label}))
        self._publish(report)
        return report

    def _publish(self, report: Report) -> None:
        """One message per run that found something; a quiet run sends nothing (no mail every half hour)."""
        if not self.settings.topic_arn or not (report.actions or report.notes):
            return
        try:
            self.call(self.clients("sns").publish, TopicArn=self.settings.topic_arn, Subject=report.subject,
                      Message=report.text())
        except ClientError as exc:
            # What was done is done; the report stays in the function's log, and the failure is said there.
            logger.error("report not published (%s):\n%s", error_code(exc), report.text())
            report.notes.append(f"report not published to the topic ({error_code(exc)})")


def _kept_detail(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    kept = ", ".join(f"{row['ResourceType']} {row.get('PhysicalResourceId') or row['LogicalResourceId']}"
                     for row in rows)
    return f"kept for labctl teardown (archive first): {kept}"


def run(settings: Settings, clients: ClientFactory, *, now: dt.datetime,
        sleep: Callable[[float], None] = time.sleep, poll_seconds: float = 15, max_polls: int = 40) -> Report:
    """One guard run at `now` (timezone-aware); what the schedule, `labctl guard run` and the tests call."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return Guard(settings, clients, now=now, sleep=sleep, poll_seconds=poll_seconds, max_polls=max_polls).run()


@functools.cache
def _runtime() -> tuple[Settings, ClientFactory]:
    """Built once per execution environment, so a bad environment fails the first invocation."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=5, read_timeout=30)
    session = boto3.Session()
    return Settings.from_env(), functools.cache(lambda service: session.client(service, config=config))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings, clients = _runtime()
    return run(settings, clients, now=dt.datetime.now(dt.timezone.utc)).summary()
