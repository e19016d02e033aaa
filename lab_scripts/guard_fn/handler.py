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

# Same values as course.naming.TAG_COURSE / TAG_STUDENT and lab_scripts.audit.NOTEBOOK_LOG_GROUP (a test keeps
# them equal).
TAG_COURSE = "labkit:course"
TAG_STUDENT = "labkit:student"
# The guard's own record on each lab machine (see `Ledger`), and the mark that withholds a capped student's start
# (the students' policy denies starting a machine whose `labkit:capped` is a date; see infra/student_access.py).
TAG_SPEND = "labkit:spend"
TAG_CAPPED = "labkit:capped"
ALLOWED_PREFIX = "allowed-"  # `labkit:capped=allowed-<day>`: the instructor lifted the cap for that day
# What the GPU instance publishes through the CloudWatch agent its boot script configures, once a minute, with
# the one dimension InstanceId: CPU and GPU utilisation in percent, and 1 when a terminal (Session Manager or
# SSH) had input in the last 90 seconds. The idle alarm (infra/gpu_workstations.py) and the guard read the same.
AGENT_NAMESPACE = "LabKit/GPU"
CPU_METRIC, GPU_METRIC, INPUT_METRIC = "cpu_usage_active", "nvidia_smi_utilization_gpu", "labkit_terminal_input"
NOTEBOOK_LOG_GROUP = "/aws/sagemaker/NotebookInstances"
THROTTLING = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded", "TooManyRequestsException",
    "RequestThrottled", "RequestThrottledException", "SlowDown",
})

STOP_NOTEBOOK, STOP_INSTANCE = "stop notebook", "stop instance"
WITHHOLD_START, LIFT_CAP = "withhold start", "lift cap"
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
    # Spend caps in USD per local day (None = off): over the cap a student's machines (or the class's) stop and
    # their start is withheld until the next day or `labctl allow`.
    max_usd_per_student_day: float | None = None
    max_usd_class_day: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_usd_per_student_day", "max_usd_class_day"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 100_000:
                raise SettingsError(f"{name} {value} must be a positive amount of USD (at most 100000)")
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

    @property
    def capped(self) -> bool:
        return self.max_usd_per_student_day is not None or self.max_usd_class_day is not None


@dataclass(frozen=True)
class IdleRule:
    """When a GPU instance is idle, one minute at a time: CPU below `cpu_percent`, GPU below `gpu_percent`, and
    no terminal input. The CloudWatch alarm evaluates `expression()` (metric math) natively; the guard and the
    benchmark call `busy()` on the same numbers. A missing value counts as busy: no data never stops a machine."""

    cpu_percent: float = 5
    gpu_percent: float = 5

    def busy(self, cpu: float | None, gpu: float | None, terminal_input: float | None) -> float:
        """1 or more when any signal is busy (or missing), below 1 when every one is idle."""
        return max(100 if cpu is None else cpu / self.cpu_percent,
                   100 if gpu is None else gpu / self.gpu_percent,
                   1 if terminal_input is None else terminal_input)

    def expression(self, cpu: str = "cpu", gpu: str = "gpu", terminal_input: str = "tty") -> str:
        """The same rule as CloudWatch metric math; the alarm fires when it stays below 1 for the whole window."""
        return (f"MAX([FILL({cpu}, 100) / {self.cpu_percent:g}, FILL({gpu}, 100) / {self.gpu_percent:g}, "
                f"FILL({terminal_input}, 1)])")


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
    idle_gpu_percent: int = 5
    # USD per hour by instance type (EC2 `g4dn.xlarge`, SageMaker `ml.t3.medium`), for the course's types only:
    # the stack passes the bundled prices in, since the function cannot import lab_scripts.prices.
    prices: tuple[tuple[str, float], ...] = ()
    # Account-per-student mode: the class stack set (its instances name the students' accounts) and the stop-only
    # role it deploys in each of them; empty in the other modes.
    student_stack_set: str = ""
    student_role: str = ""

    # Field -> environment variable; policy fields are read from the same environment.
    ENV = {name: f"LABKIT_{name.upper()}" for name in (
        "course", "expires", "stacks", "iam_path", "topic_arn", "teardown_role_arn", "idle_cpu_percent", "dry_run",
        "idle_minutes", "after_hours", "timezone", "max_actions")}
    # Added later; optional so that `labctl guard run` still reads a guard deployed before them.
    OPTIONAL = {name: f"LABKIT_{name.upper()}" for name in (
        "idle_gpu_percent", "prices", "max_usd_per_student_day", "max_usd_class_day", "student_stack_set",
        "student_role")}

    @property
    def rule(self) -> IdleRule:
        return IdleRule(self.idle_cpu_percent, self.idle_gpu_percent)

    def price(self, instance_type: str) -> float | None:
        return dict(self.prices).get(instance_type)

    def to_env(self) -> dict[str, str]:
        policy = self.policy
        text = {"expires": self.expires.isoformat(), "stacks": ",".join(self.stacks),
                "dry_run": str(policy.dry_run).lower(), "after_hours": policy.after_hours or "off"}
        values = {**{name: str(getattr(self, name)) for name in ("course", "iam_path", "topic_arn",
                                                                  "teardown_role_arn", "idle_cpu_percent")},
                  **{name: str(getattr(policy, name)) for name in ("idle_minutes", "timezone", "max_actions")},
                  **text}
        caps = {name: "off" if getattr(policy, name) is None else f"{getattr(policy, name):g}"
                for name in ("max_usd_per_student_day", "max_usd_class_day")}
        extra = {"idle_gpu_percent": str(self.idle_gpu_percent),
                 "prices": json.dumps(dict(self.prices), separators=(",", ":"), sort_keys=True), **caps,
                 "student_stack_set": self.student_stack_set, "student_role": self.student_role}
        # The student-account settings are left out where they do not apply (every mode but account-per-student).
        return ({variable: values[name] for name, variable in self.ENV.items()}
                | {variable: extra[name] for name, variable in self.OPTIONAL.items() if extra[name]})

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
        extra = {name: source.get(variable, "") for name, variable in cls.OPTIONAL.items()}
        try:
            caps = {name: None if extra[name] in {"", "off"} else float(extra[name])
                    for name in ("max_usd_per_student_day", "max_usd_class_day")}
            prices = json.loads(extra["prices"] or "{}")
            if not isinstance(prices, dict) or not all(isinstance(v, (int, float)) for v in prices.values()):
                raise ValueError(f"LABKIT_PRICES {extra['prices']!r} must be a JSON object of USD per hour")
            policy = Policy(raw["dry_run"] == "true", int(raw["idle_minutes"]),
                            "" if raw["after_hours"] == "off" else raw["after_hours"], raw["timezone"],
                            int(raw["max_actions"]), **caps)
            return cls(raw["course"], dt.date.fromisoformat(raw["expires"]), tuple(raw["stacks"].split(",")),
                       raw["iam_path"], raw["topic_arn"], raw["teardown_role_arn"], int(raw["idle_cpu_percent"]),
                       policy, int(extra["idle_gpu_percent"] or 5),
                       tuple(sorted((str(k), float(v)) for k, v in prices.items())),
                       extra["student_stack_set"], extra["student_role"])
        except (ValueError, json.JSONDecodeError) as exc:
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
    arn: str = ""  # for tag changes on notebooks: the notebook's ARN
    account: str = ""  # account-per-student mode: the student's account holding `target` ("" for this account)

    @property
    def label(self) -> str:
        # Enough of a key id to tell keys apart in a report, not enough to look one up by.
        label = f"{self.target}/{self.key_id[:4]}...{self.key_id[-4:]}" if self.key_id else self.target
        return f"{label} (account {self.account})" if self.account else label


@dataclass
class Report:
    """What one run found and did; `text` is what the SNS topic and the log receive."""

    course: str
    at: dt.datetime
    dry_run: bool
    expires: dt.date
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # With a spend cap: USD of compute so far, {"today": {student: usd}, "course": {student: usd}}.
    spend: dict[str, dict[str, float]] = field(default_factory=dict)

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
        spend = {f"usd_{period}": round(sum(by_student.values()), 2) for period, by_student in self.spend.items()}
        return {"course": self.course, "dry_run": self.dry_run, "expired": self.expired, **self.counts(), **spend}


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


def is_gpu_notebook(instance_type: str) -> bool:
    """ml.g4dn.*, ml.g5.*, ml.p3.* ...: SageMaker notebook types with a GPU."""
    return re.match(r"ml\.(g|p)\d", instance_type) is not None


def _tag(tags: list[dict[str, str]], key: str) -> str:
    return next((tag.get("Value", "") for tag in tags if tag.get("Key") == key), "")


def _tagged(tags: list[dict[str, str]], course: str) -> bool:
    return any(tag.get("Key") == TAG_COURSE and tag.get("Value") == course for tag in tags)


_TRANSITION = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?:GMT|UTC)\)")


@dataclass(frozen=True)
class Ledger:
    """The guard's record of one machine's compute spend, kept in its tag `labkit:spend`.

    Model: a machine bills its hourly price from the start of a session to its stop. The describe calls give
    the current (or last) session: EC2's `LaunchTime` (the last start) and the stop time in
    `StateTransitionReason`; a notebook's `LastModifiedTime` at the run that first sees it InService (start)
    and when it is seen stopped (stop). What the describe calls forget once a machine restarts, earlier
    sessions, lives here: the closed sessions' USD today (`day`, local) and over the course, the open
    session's start (`since`, epoch seconds, 0 = none) and the last EC2 session already counted (`counted`).
    A session that starts and stops between two runs is still counted for EC2 (LaunchTime > counted); for a
    notebook, at most one guard period is missed. Storage is not metered: stopping does not end it.
    """

    day: str = ""
    today: float = 0.0
    total: float = 0.0
    since: int = 0
    counted: int = 0

    def text(self) -> str:
        return (f"day={self.day} today={self.today:.4f} total={self.total:.4f} since={self.since} "
                f"counted={self.counted}")

    @classmethod
    def parse(cls, text: str) -> Ledger:
        try:
            fields = dict(part.split("=", 1) for part in text.split())
            return cls(fields.get("day", ""), float(fields.get("today", 0)), float(fields.get("total", 0)),
                       int(fields.get("since", 0)), int(fields.get("counted", 0)))
        except ValueError:
            logger.warning("unreadable %s tag %r; starting a new record", TAG_SPEND, text)
            return cls()


@dataclass
class Machine:
    """A course notebook or GPU instance as the meter and the cap see it."""

    kind: str  # STOP_NOTEBOOK or STOP_INSTANCE
    target: str  # notebook name or instance id
    instance_type: str
    student: str
    running: bool
    started: dt.datetime | None  # start of the current or last session, as described
    stopped: dt.datetime | None  # end of the last session, as described (None while running)
    tags: dict[str, str]
    arn: str = ""
    ledger: Ledger = Ledger()
    today: float = 0.0  # USD today (local day) and over the course, set by the meter
    total: float = 0.0


def _epoch(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def _hours(seconds: float) -> float:
    return max(0.0, seconds) / 3600


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
        self.machines: list[Machine] = []
        self.spend: dict[str, dict[str, float]] = {}
        self.members: dict[str, Guard] = {}  # account-per-student mode: a stop-only guard per student account

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
        if is_gpu_notebook(str(notebook.get("InstanceType", ""))):
            # SageMaker publishes no GPU metric for notebooks: silent training on the GPU writes no Jupyter log.
            # The notebook's own auto-stop reads nvidia-smi; the guard keeps after-hours, expiry and the caps.
            return None
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
            name, status = notebook["NotebookInstanceName"], notebook["NotebookInstanceStatus"]
            # Without a cap only running notebooks matter; the meter also closes the sessions of stopped ones.
            if not name.startswith(f"{course}-") or (status != "InService" and not self.policy.capped):
                continue
            tags = self.call(sm.list_tags, ResourceArn=notebook["NotebookInstanceArn"])["Tags"]
            if not _tagged(tags, course):
                continue
            running = status in {"Pending", "InService"}
            changed = notebook["LastModifiedTime"]
            self.machines.append(Machine(STOP_NOTEBOOK, name, str(notebook.get("InstanceType", "")),
                                         _tag(tags, TAG_STUDENT), running, changed if running else None,
                                         None if running else changed, {t["Key"]: t["Value"] for t in tags},
                                         arn=notebook["NotebookInstanceArn"]))
            if status != "InService":
                continue
            reason = self._stop_reason(lambda: self._notebook_idle(notebook))
            if reason:
                planned.append(Action(STOP_NOTEBOOK, name, reason))
        return planned

    def _peak(self, instance_id: str, namespace: str, metric: str, start: dt.datetime) -> float | None:
        """Maximum of one metric over the window, or None when the window is not covered (never idle on a guess)."""
        minutes = self.policy.idle_minutes
        points = self.call(
            self.clients("cloudwatch").get_metric_statistics, Namespace=namespace, MetricName=metric,
            Dimensions=[{"Name": "InstanceId", "Value": instance_id}], StartTime=start, EndTime=self.now,
            Period=300, Statistics=["Maximum"],
        )["Datapoints"]
        if len(points) < max(1, int(minutes * _POINTS_PER_MINUTE)):
            logger.info("%s: %d %s datapoints in %d min; not enough to call it idle", instance_id, len(points),
                        metric, minutes)
            return None
        return max(float(point["Maximum"]) for point in points)

    def _instance_idle(self, instance: dict[str, Any]) -> str | None:
        """CPU (EC2's own metric) and GPU and terminal input (the agent's) all idle for the whole window. An
        instance without the agent's GPU metric is never called idle: 3 % CPU may be a silent GPU training."""
        minutes, rule = self.policy.idle_minutes, self.settings.rule
        start = self.now - dt.timedelta(minutes=minutes)
        if instance["LaunchTime"] > start:
            return None
        peaks = []
        for namespace, metric in (("AWS/EC2", "CPUUtilization"), (AGENT_NAMESPACE, GPU_METRIC),
                                  (AGENT_NAMESPACE, INPUT_METRIC)):
            peak = self._peak(instance["InstanceId"], namespace, metric, start)
            if peak is None:
                return None
            peaks.append(peak)
        cpu, gpu, terminal = peaks
        if rule.busy(cpu, gpu, terminal) >= 1:
            return None
        return (f"CPU at most {cpu:.1f} % and GPU at most {gpu:.1f} % for {minutes} min, no terminal input "
                f"(limits {rule.cpu_percent:g} %, {rule.gpu_percent:g} %)")

    def instances(self) -> list[Action]:
        ec2, course = self.clients("ec2"), self.settings.course
        states = ["pending", "running", "stopping", "stopped"] if self.policy.capped else ["running"]
        filters = [{"Name": f"tag:{TAG_COURSE}", "Values": [course]},
                   {"Name": "instance-state-name", "Values": states}]
        planned = []
        for reservation in self.call.pages(ec2.describe_instances, "Reservations", Filters=filters):
            for instance in reservation["Instances"]:
                state, tags = instance["State"]["Name"], instance.get("Tags", [])
                # The filter is the service's promise; the tag check is ours.
                if state not in states or not _tagged(tags, course):
                    continue
                running = state in {"pending", "running"}
                match = _TRANSITION.search(str(instance.get("StateTransitionReason", "")))
                stopped = (None if running else dt.datetime.fromisoformat(match.group(1)).replace(
                    tzinfo=dt.timezone.utc) if match else None)
                self.machines.append(Machine(STOP_INSTANCE, instance["InstanceId"], instance["InstanceType"],
                                             _tag(tags, TAG_STUDENT), running, instance["LaunchTime"], stopped,
                                             {t["Key"]: t["Value"] for t in tags}))
                if state != "running":
                    continue
                reason = self._stop_reason(lambda: self._instance_idle(instance))
                if reason:
                    planned.append(Action(STOP_INSTANCE, instance["InstanceId"], reason))
        return planned

    # -- the spend meter and the caps -------------------------------------------------------------------------
    def _midnight(self) -> dt.datetime:
        local = self.local
        return dt.datetime.combine(local.date(), dt.time(0), local.tzinfo).astimezone(dt.timezone.utc)

    def meter(self, machine: Machine) -> Ledger:
        """Bring the machine's ledger up to now (close what ended), set its USD today and over the course, and
        return the ledger to write back (equal to the old one when nothing changed)."""
        old = Ledger.parse(machine.tags.get(TAG_SPEND, ""))
        price = self.settings.price(machine.instance_type)
        if price is None:
            if machine.running:
                self.notes.append(f"no price for {machine.instance_type} ({machine.target}); not metered")
            return old
        day, midnight = self.local.date().isoformat(), self._midnight()
        ledger = old if old.day == day else replace(old, day=day, today=0.0)

        def close(ledger: Ledger, start: dt.datetime, end: dt.datetime) -> Ledger:
            today = _hours((end - max(start, midnight)).total_seconds()) * price
            return replace(ledger, today=ledger.today + today,
                           total=ledger.total + _hours((end - start).total_seconds()) * price)

        started, ec2 = machine.started, machine.kind == STOP_INSTANCE
        if machine.running and started is not None:
            if ledger.since and ec2 and abs(ledger.since - _epoch(started)) > 1:
                # Restarted between two runs: the stop was not seen; count the old session up to the new start.
                ledger = replace(close(ledger, dt.datetime.fromtimestamp(ledger.since, dt.timezone.utc), started),
                                 counted=ledger.since, since=0)
            if not ledger.since:
                ledger = replace(ledger, since=_epoch(started))
        elif not machine.running:
            end = machine.stopped or self.now
            if ledger.since:
                ledger = replace(close(ledger, dt.datetime.fromtimestamp(ledger.since, dt.timezone.utc), end),
                                 counted=ledger.since, since=0)
            elif ec2 and started is not None and machine.stopped and _epoch(started) > ledger.counted:
                ledger = replace(close(ledger, started, machine.stopped), counted=_epoch(started))
        machine.ledger, machine.today, machine.total = ledger, ledger.today, ledger.total
        if ledger.since:
            since = dt.datetime.fromtimestamp(ledger.since, dt.timezone.utc)
            machine.today += _hours((self.now - max(since, midnight)).total_seconds()) * price
            machine.total += _hours((self.now - since).total_seconds()) * price
        return ledger

    def caps(self) -> list[Action]:
        """Stop an over-cap student's running machines (or everyone's, over the class cap) and withhold their start
        until the next day; lift yesterday's marks. Not before the cap: spend below it changes nothing."""
        policy, day = self.policy, self.local.date().isoformat()
        spent: dict[str, float] = {}
        for machine in self.machines:
            spent[machine.student] = spent.get(machine.student, 0.0) + machine.today
        self.spend = {"today": {k: round(v, 4) for k, v in spent.items()},
                      "course": {m: round(sum(x.total for x in self.machines if x.student == m), 4) for m in spent}}
        class_today = sum(spent.values())
        class_over = policy.max_usd_class_day is not None and class_today >= policy.max_usd_class_day
        planned: list[Action] = []
        for machine in self.machines:
            mark = machine.tags.get(TAG_CAPPED, "")
            allowed = mark == f"{ALLOWED_PREFIX}{day}"
            student_cap = policy.max_usd_per_student_day
            reason = ""
            if allowed:
                pass
            elif student_cap is not None and spent[machine.student] >= student_cap:
                reason = (f"spend cap: {machine.student or 'unassigned'} spent {spent[machine.student]:.2f} USD "
                          f"today (cap {student_cap:.2f} USD per student and day)")
            elif class_over:
                reason = (f"class spend cap: {class_today:.2f} USD today (cap {policy.max_usd_class_day:.2f} USD "
                          f"per day)")
            if reason:
                if machine.running:
                    planned.append(Action(machine.kind, machine.target, f"{reason}; start withheld until tomorrow"))
                if mark != day:
                    planned.append(Action(WITHHOLD_START, machine.target, reason, arn=machine.arn))
            elif mark and mark != day and not allowed:
                # A mark of today stays all day (start withheld until tomorrow), even if a late stop time
                # brings today's spend back under the cap; `labctl allow` is the way to lift it early.
                planned.append(Action(LIFT_CAP, machine.target, f"{TAG_CAPPED}={mark} ended ({day})",
                                      arn=machine.arn))
        return planned

    def _write_ledgers(self) -> None:
        """Bookkeeping, not an action: the ledger tag changes only when a session opens or closes."""
        day = self.local.date().isoformat()
        for machine in self.machines:
            ledger = self.meter(machine)
            old = Ledger.parse(machine.tags.get(TAG_SPEND, ""))
            # A new day alone needs no write: reading an old day's record starts today from zero anyway.
            unchanged = old if old.day == day else replace(old, day=day, today=0.0)
            if ledger.text() == unchanged.text() or self.policy.dry_run:
                continue
            try:
                self._set_tags(machine.kind, machine.target, machine.arn, {TAG_SPEND: ledger.text()})
            except ClientError as exc:
                self.notes.append(f"spend record of {machine.target} not written ({error_code(exc)})")

    def _set_tags(self, kind: str, target: str, arn: str, tags: dict[str, str]) -> None:
        if kind in {STOP_INSTANCE}:
            self.call(self.clients("ec2").create_tags, Resources=[target],
                      Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        else:
            self.call(self.clients("sagemaker").add_tags, ResourceArn=arn,
                      Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

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
        """Stops first (they end the hourly charges; over-cap ones first), then the cap marks, then keys (they
        end access), then stacks."""
        self.machines = []
        idle = self.notebooks() + self.instances() + self.student_accounts()
        planned = idle
        if self.policy.capped:
            self._write_ledgers()
            capped = self.caps()
            stops = [a for a in capped if a.kind in {STOP_NOTEBOOK, STOP_INSTANCE}]
            stopping = {a.target for a in stops}
            planned = stops + [a for a in idle if a.target not in stopping] + [
                a for a in capped if a.kind not in {STOP_NOTEBOOK, STOP_INSTANCE}]
        if self.expired:
            planned += self.access_keys() + self.stacks()
        return planned

    def _student_accounts(self) -> list[str]:
        cfn = self.clients("cloudformation")
        try:
            instances = list(self.call.pages(cfn.list_stack_instances, "Summaries",
                                             StackSetName=self.settings.student_stack_set))
        except ClientError as exc:
            if error_code(exc) == "StackSetNotFoundException":
                return []
            raise
        return sorted({instance["Account"] for instance in instances})

    def student_accounts(self) -> list[Action]:
        """Account-per-student mode: the idle, after-hours and end-of-course stops in every student's account,
        through the stop-only role the stack set deploys there (it can list, read activity and stop; nothing else).
        The spend caps, keys and stacks stay this account's business."""
        if not self.settings.student_stack_set:
            return []
        settings = replace(self.settings, student_stack_set="", stacks=(),
                           policy=replace(self.policy, max_usd_per_student_day=None, max_usd_class_day=None))
        planned: list[Action] = []
        partition = self.clients("sts").meta.partition  # aws, aws-cn or aws-us-gov: the region's
        for account in self._student_accounts():
            arn = f"arn:{partition}:iam::{account}:role{self.settings.iam_path}{self.settings.student_role}"
            try:
                credentials = self.call(self.clients("sts").assume_role, RoleArn=arn,
                                        RoleSessionName="labkit-guard")["Credentials"]
            except ClientError as exc:
                self.notes.append(f"account {account}: cannot assume {self.settings.student_role} "
                                  f"({error_code(exc)}); its machines were not checked")
                continue
            member = Guard(settings, _assumed_clients(credentials, self.clients("sts")), now=self.now,
                           sleep=self.sleep)
            self.members[account] = member
            planned += [replace(action, account=account) for action in member.notebooks() + member.instances()]
        return planned

    # -- acting ---------------------------------------------------------------------------------------------
    def _act(self, action: Action) -> Action:
        if action.account:
            return replace(self.members[action.account]._act(replace(action, account="")), account=action.account)
        if action.kind == STOP_NOTEBOOK:
            self.call(self.clients("sagemaker").stop_notebook_instance, NotebookInstanceName=action.target)
        elif action.kind == STOP_INSTANCE:
            self.call(self.clients("ec2").stop_instances, InstanceIds=[action.target])
        elif action.kind == WITHHOLD_START:
            kind = STOP_NOTEBOOK if action.arn else STOP_INSTANCE
            self._set_tags(kind, action.target, action.arn, {TAG_CAPPED: self.local.date().isoformat()})
        elif action.kind == LIFT_CAP:
            if action.arn:
                self.call(self.clients("sagemaker").delete_tags, ResourceArn=action.arn, TagKeys=[TAG_CAPPED])
            else:
                self.call(self.clients("ec2").delete_tags, Resources=[action.target], Tags=[{"Key": TAG_CAPPED}])
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
        report.spend = self.spend
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


def _assumed_clients(credentials: Mapping[str, Any], like: Any) -> ClientFactory:
    """Clients acting with an assumed role's credentials in the region of client `like`; at its endpoint too when
    that is a local one (the emulator serves every service at one URL), AWS's own endpoints otherwise."""
    import boto3

    session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                            aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"], region_name=like.meta.region_name)
    endpoint = str(like.meta.endpoint_url)
    local = None if endpoint.split("/")[2].endswith(("amazonaws.com", "amazonaws.com.cn")) else endpoint
    return functools.cache(lambda service: session.client(service, endpoint_url=local))


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
