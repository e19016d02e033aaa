"""What operations report while they work: typed events to a sink the caller gives them.

Operations never print. The CLI's sink renders a live view (or plain lines without a terminal) and writes the CDK
CLI's own output to a log file; the demo and the tests pass sinks of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class Event:
    """Base of every event an operation emits."""


@dataclass(frozen=True)
class Info(Event):
    """A line worth showing as it happens (what was done, what comes next)."""

    text: str


@dataclass(frozen=True)
class Warning(Event):  # noqa: A001 - the event, not the builtin category
    """Something the user should act on; the operation goes on."""

    text: str


@dataclass(frozen=True)
class ToolOutput(Event):
    """A raw line of a tool labkit runs (the CDK CLI): for the log file, on the terminal only with --verbose."""

    line: str


@dataclass(frozen=True)
class PhaseStarted(Event):
    """Long work of `total` items begins (stacks to deploy, buckets to archive, machines to stop)."""

    title: str
    total: int


@dataclass(frozen=True)
class PhaseFinished(Event):
    """The phase's work is done; the view times it from PhaseStarted."""

    title: str


@dataclass(frozen=True)
class StackStarted(Event):
    stack: str
    action: str  # "deploy" | "destroy"


@dataclass(frozen=True)
class StackFinished(Event):
    stack: str
    action: str
    seconds: float


@dataclass(frozen=True)
class StackFailed(Event):
    """A stack that did not deploy or delete; `reason` is CloudFormation's (its first failed resource event)."""

    stack: str
    action: str
    reason: str


@dataclass(frozen=True)
class MachineStopped(Event):
    kind: str  # "notebook" | "instance"
    name: str
    state: str


@dataclass(frozen=True)
class BucketArchived(Event):
    bucket: str
    objects: int
    bytes: int
    where: str  # the archive folder, or "" when emptied without archive


@dataclass(frozen=True)
class KeysDeactivated(Event):
    user: str
    keys: int


@dataclass(frozen=True)
class KeysDeleted(Event):
    user: str
    keys: int


@dataclass(frozen=True)
class StepDone(Event):
    """A step of a resumable operation (the teardown journal) is recorded as done."""

    step: str


Sink = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The sink of callers that only want the result."""


class Collect:
    """A sink that keeps every event, for tests and for callers that summarise afterwards."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list[Event]:
        return [event for event in self.events if isinstance(event, kind)]


def describe(event: Event) -> str:
    """The event as one plain line (logs, tests, and output without a terminal)."""
    if isinstance(event, (Info, Warning)):
        return event.text
    if isinstance(event, ToolOutput):
        return event.line
    if isinstance(event, StackStarted):
        return f"{event.stack}: {event.action}ing"
    if isinstance(event, StackFinished):
        return f"{event.stack}: {'deployed' if event.action == 'deploy' else 'deleted'}"
    if isinstance(event, StackFailed):
        return f"{event.stack}: {event.action} failed: {event.reason}"
    if isinstance(event, MachineStopped):
        return f"{event.kind} {event.name}: {event.state}"
    if isinstance(event, BucketArchived):
        return f"s3://{event.bucket}: archived {event.objects} objects ({event.bytes} bytes)" + (
            f" -> {event.where}" if event.where else "")
    if isinstance(event, KeysDeactivated):
        return f"{event.user}: deactivated {event.keys} access key(s)"
    if isinstance(event, KeysDeleted):
        return f"{event.user}: deleted {event.keys} access key(s)"
    if isinstance(event, PhaseStarted):
        return f"{event.title}: {event.total}"
    if isinstance(event, PhaseFinished):
        return f"{event.title}: done"
    if isinstance(event, StepDone):
        return f"{event.step}: done"
    return repr(event)


class Lines:
    """A sink that keeps each event as its plain line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, event: Event) -> None:
        self.lines.append(describe(event))
