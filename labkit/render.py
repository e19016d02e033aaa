"""How labctl shows operations: a live view of their events, and tables of their results.

Every string that comes from a roster, a file or AWS is printed as text: the console parses no markup and no
emoji codes, and labkit's own styling is applied through `Text` styles, never through markup in strings.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from course.config import LabConfig
from lab_scripts.audit import AuditReport
from lab_scripts.guard_fn.handler import Report
from lab_scripts.inventory import EXISTS, Found
from labkit import ROOT
from labkit.events import (BucketArchived, Event, Info, KeysDeactivated, KeysDeleted, MachineStopped, PhaseFinished,
                           PhaseStarted, StackFailed, StackFinished, StackStarted, ToolOutput, Warning)
from labkit.ops.provision import ProvisionPlan
from labkit.ops.status import AccountStatus, StudentStatus
from labkit.ops.teardown import TeardownPlan

LOG_ROOT = ROOT / ".labkit" / "logs"
# Rows of work in progress the live view shows at once; the rest is counted in the bar.
LIVE_ROWS = 12


def make_console(stderr: bool = False) -> Console:
    # Rich falls back to 80 columns without a terminal (CI logs), which folds ARNs into unreadable columns.
    stream = sys.stderr if stderr else sys.stdout
    return Console(markup=False, emoji=False, highlight=False, stderr=stderr,
                   width=None if stream.isatty() else 160)


console = make_console()


def styled(text: str, style: str) -> Text:
    return Text(text, style=style)


def line(*parts: str | tuple[str, str]) -> Text:
    """Text from plain parts and (text, style) pairs: external strings stay text whatever they contain."""
    return Text.assemble(*parts)


def count(number: int, noun: str) -> str:
    """'1 file', '3 files', '0 resources': counts in output read as English."""
    return f"{number} {noun if number == 1 else noun + 's'}"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


@dataclass
class _Item:
    label: str
    state: str
    started: float
    done: bool = False


@dataclass
class _Phase:
    title: str
    total: int
    started: float
    done: int = 0
    failed: int = 0
    archived_objects: int = 0
    archived_bytes: int = 0
    # Items shown but not counted by the bar (machines stopped, keys frozen), by what happened to them: the noun
    # counted and a phrase with {} for the count, e.g. ("instance", "{} stopped") -> "1 instance stopped"; or no
    # noun and the item's state, e.g. ("", "Stopped") -> "2 Stopped".
    others: dict[tuple[str, str], int] = field(default_factory=dict)


class LiveView:
    """The sink labctl gives operations: a live view on a terminal (collapsing to a summary line per phase),
    one line per finished item without one (CI), the tool output in a log file, or streamed with `verbose`."""

    def __init__(self, command: str, out: Console | None = None, *, verbose: bool = False,
                 log_root: Path = LOG_ROOT) -> None:
        self.console = out or console
        self.verbose = verbose
        self.log_path = log_root / f"{dt.datetime.now():%Y%m%d-%H%M%S}-{command}.log"
        self._log: IO[str] | None = None
        self.items: dict[str, _Item] = {}
        self.phase: _Phase | None = None
        self.failures: list[StackFailed] = []
        self._live: Live | None = None
        self._bar: Progress | None = None
        self._task: Any = None

    # The log file is opened on the first line written to it, so commands that run no tool leave none.
    def _write_log(self, text: str) -> None:
        if self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("a", encoding="utf-8")
            self.console.print(line("full output of the CDK CLI: ", str(self.log_path)))
        self._log.write(text + "\n")
        self._log.flush()

    def close(self) -> None:
        self._stop_live()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> "LiveView":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def print(self, text: str | Text) -> None:
        (self._live.console if self._live else self.console).print(text, soft_wrap=True)

    def __call__(self, event: Event) -> None:
        if isinstance(event, ToolOutput):
            self._write_log(event.line)
            if self.verbose:
                self.print(Text(event.line))
            return
        if isinstance(event, Info):
            self.print(Text(event.text))
        elif isinstance(event, Warning):
            self.print(line(("warning: ", "bold yellow"), event.text))
        elif isinstance(event, PhaseStarted):
            self._start_phase(event)
        elif isinstance(event, PhaseFinished):
            self._finish_phase()
        elif isinstance(event, StackStarted):
            self._begin(event.stack, f"{event.action}ing")
        elif isinstance(event, StackFinished):
            self._end(event.stack, "deployed" if event.action == "deploy" else "deleted", counts=True)
        elif isinstance(event, StackFailed):
            self.failures.append(event)
            self._end(event.stack, "FAILED", failed=True)
            self.print(line(("failed: ", "bold red"), f"{event.stack} ({event.action}): {event.reason}"))
        elif isinstance(event, BucketArchived):
            if self.phase:
                self.phase.archived_objects += event.objects
                self.phase.archived_bytes += event.bytes
            where = f" -> {event.where}" if event.where else " (no archive)"
            self._end(f"s3://{event.bucket}", f"archived {count(event.objects, 'object')}, {_size(event.bytes)}{where}",
                      counts=True)
        elif isinstance(event, MachineStopped):
            self._end(f"{event.kind} {event.name}", event.state, key=f"stop:{event.kind}:{event.name}",
                      tally=(event.kind, "{} stopped"),
                      counts=self.phase is not None and self.phase.title == "stopping")
        elif isinstance(event, (KeysDeactivated, KeysDeleted)):
            verb = "deactivated" if isinstance(event, KeysDeactivated) else "deleted"
            self._end(event.user, f"{verb} {event.keys} access key(s)", key=f"keys:{verb}:{event.user}",
                      tally=("user", "keys of {} " + verb))
        self._refresh()

    # -- phases and items ---------------------------------------------------------------------------------------
    def _start_phase(self, event: PhaseStarted) -> None:
        self._finish_phase()
        self.phase = _Phase(event.title, event.total, time.monotonic())
        self.items = {}
        if self.console.is_terminal:
            self._bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console)
            self._task = self._bar.add_task(event.title, total=max(event.total, 1))
            self._live = Live(self._render(), console=self.console, transient=True, refresh_per_second=4)
            self._live.start()

    def _finish_phase(self) -> None:
        if self.phase is None:
            return
        self._stop_live()
        phase, seconds = self.phase, time.monotonic() - self.phase.started
        summary = f"{phase.title}: {phase.done} done"
        if phase.failed:
            summary += f", {phase.failed} failed"
        if phase.archived_objects or phase.title == "archiving":
            summary += f" ({count(phase.archived_objects, 'object')}, {_size(phase.archived_bytes)} archived)"
        if phase.others:
            summary += "; " + ", ".join(phrase.format(count(number, noun)) if noun else f"{number} {phrase}"
                                        for (noun, phrase), number in sorted(phase.others.items()))
        self.console.print(line((summary, "bold red" if phase.failed else "green"), f" in {seconds:.1f} s"))
        self.phase = None

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _begin(self, label: str, state: str) -> None:
        self.items[label] = _Item(label, state, time.monotonic())

    def _end(self, label: str, state: str, *, failed: bool = False, counts: bool = False,
             key: str | None = None, tally: tuple[str, str] | None = None) -> None:
        key = key or label
        item = self.items.get(key)
        if item is not None and item.done:
            return
        elapsed = "" if item is None else f" ({time.monotonic() - item.started:.1f} s)"
        self.items[key] = _Item(label, state, item.started if item else time.monotonic(), done=True)
        if self.phase and (counts or failed):
            self.phase.done += 0 if failed else 1
            self.phase.failed += 1 if failed else 0
        if self.phase is not None and not counts:
            tallied = tally or ("", state)  # a state is external text: never a format string
            self.phase.others[tallied] = self.phase.others.get(tallied, 0) + 1
        if not self.console.is_terminal and not failed and (counts or self.phase is None):
            self.console.print(line(f"{label}: {state}", (elapsed, "dim")), soft_wrap=True)

    def _render(self) -> Group:
        now = time.monotonic()
        running = [item for item in self.items.values() if not item.done][:LIVE_ROWS]
        rows = [line(("  … ", "cyan"), item.label, (f"  {item.state} {now - item.started:.0f} s", "dim"))
                for item in running]
        return Group(*(rows + ([self._bar] if self._bar else [])))

    def _refresh(self) -> None:
        if self._live is not None and self._bar is not None and self.phase is not None:
            self._bar.update(self._task, completed=self.phase.done + self.phase.failed)
            self._live.update(self._render())


# -- tables ---------------------------------------------------------------------------------------------------
def table(title: str, columns: list[str], rows: list[list[str | Text]]) -> Table:
    out = Table(title=title, title_justify="left")
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*[cell if isinstance(cell, Text) else Text(str(cell)) for cell in row])
    return out


STATE_COLOURS = {"InService": "green", "running": "green", "Stopped": "yellow", "stopped": "yellow"}


def state(text: str) -> Text:
    return Text(text, style=STATE_COLOURS.get(text, "red"))


# -- rendering of results -------------------------------------------------------------------------------------
def print_audit(report: AuditReport) -> None:
    for note in report.unchecked:
        console.print(line(("unchecked ", "yellow"), note))
    if report.kept:
        console.print(Text(f"{len(report.kept)} kept on purpose (students' GPU homes as snapshots): about "
                           f"{report.kept_usd_per_hour * 730:.2f} USD/month until `labctl preserved delete`"))
    left = [item for item in report.leftovers if not item.kept]
    if report.clean:
        for item in report.pending:
            console.print(Text(f"pending: {item.kind} {item.name} ({item.detail}; not billed meanwhile)"))
        console.print(styled("0 resources left", "bold green"))
        return
    for item in report.pending:
        console.print(Text(f"pending: {item.kind} {item.name} ({item.detail}; not billed meanwhile)"))
    rows = [[item.service, item.kind, item.name, "yes" if item.billable else "no",
             "-" if not item.billable else "?" if item.usd_per_hour is None else f"{item.usd_per_hour:.4f}",
             item.detail + (f"; fix: {item.fix}" if item.fix else "")] for item in left]
    console.print(table(f"{count(len(left), 'resource')} left",
                        ["service", "kind", "name", "billable", "USD/hour", "detail"], rows))
    if report.billable:
        unknown = f"; no price known for {len(report.unpriced)} of them" if report.unpriced else ""
        console.print(line((f"{len(report.billable)} billable", "bold red"),
                           f": about {report.usd_per_hour:.4f} USD/hour ({report.usd_per_hour * 24 * 30:.2f} USD a "
                           f"month) while they stay (us-east-1 list prices, an estimate{unknown})"))


def print_inventory(inventory: dict[str, list[Found]]) -> None:
    for lab, found in inventory.items():
        rows = []
        for row in sorted(found, key=lambda f: (f.student, f.type)):
            pid = row.physical_id
            short = pid.rsplit("/", 1)[-1] if pid.startswith(("arn:", "https://", "http://")) else pid
            detail = row.detail + (f" (emulator ignored: {', '.join(row.ignored)})" if row.ignored else "")
            rows.append([row.student, row.type.removeprefix("AWS::"), short,
                         row.state if row.state == EXISTS else styled(row.state, "bold yellow"), detail.strip()])
        console.print(table(f"{lab}: resources as the services report them",
                            ["student", "type", "physical id", "state", "detail"], rows))


def print_guard_report(report: Report) -> None:
    console.print(Text(report.subject))
    console.print(Text(report.text()))


def print_plan(config: LabConfig, plan: ProvisionPlan, out: Console | None = None) -> None:
    """The change a provision makes, per student group, then the class stacks: a page, not a list of stacks."""
    out = out or console
    class_rows = [[row.stack_name, str(row.resources), row.change, _brief(row.types)] for row in plan.stacks
                  if row.student in ("(class)", "(each account)")]
    out.print(table(f"plan: {count(len(config.students), 'student')} ({config.classroom.mode}); class stacks",
                        ["stack", "resources", "change", "what"], class_rows))
    per_lab = {row.lab: row.resources for row in plan.stacks if row.student in config.students}
    each = ", ".join(f"{lab} ({resources} resources)" for lab, resources in sorted(per_lab.items()))
    updated = sorted({row.student for row in plan.stacks if row.change == "update" and row.student in config.students})
    for label, students, style in (("add", plan.added, "green"), ("update", updated, "yellow"),
                                   ("unchanged", [s for s in plan.unchanged if s not in updated], "dim"),
                                   ("removed from the roster (stacks kept until `labctl destroy --student ID "
                                    "--yes`)", plan.removed, "red")):
        if students:
            out.print(line((f"{label}: {len(students)} ", style), ", ".join(students)), soft_wrap=False)
    if each:
        out.print(Text(f"each student's stacks: {each}"))
    if plan.capacity:
        fits = [f"{c.description}: {'unknown' if c.students is None else f'{c.students} more students'}"
                for c in plan.capacity]
        out.print(Text("capacity: " + "; ".join(fits)))
    cost = plan.cost
    out.print(Text(f"estimated cost until {config.expires}: {cost.with_idle_stop_usd:.2f} USD with idle stop, "
                       f"{cost.without_idle_stop_usd:.2f} USD without (`labctl cost` itemizes)"))
    for warning in plan.warnings:
        out.print(line(("warning: ", "bold yellow"), warning))


def _brief(types: str, most: int = 5) -> str:
    """The first kinds of a stack's resources; the plan is a page, `cdk synth` shows the rest."""
    kinds = types.split(", ")
    return ", ".join(kinds[:most]) + (f", +{len(kinds) - most} more kinds" if len(kinds) > most else "")


def print_teardown_plan(plan: TeardownPlan) -> None:
    by_student: dict[str, list[str]] = {}
    for row in plan.stacks:
        by_student.setdefault(row.student, []).append(f"{row.stack}: {row.holds}")
    rows = [[student, "; ".join(stacks)] for student, stacks in by_student.items()]
    console.print(table(f"plan on {plan.target}", ["student", "stacks"], rows))
    for number, step in enumerate(plan.steps, 1):
        console.print(Text(f"  {number}. {step}"))


def status_rows(rows: list[StudentStatus]) -> list[list[str | Text]]:
    return [[r.student, r.name, r.notebook, state(r.notebook_state), r.instance, state(r.instance_state),
             r.access_keys] for r in rows]


def print_account_status(rows: list[AccountStatus], config: LabConfig) -> None:
    """Account-per-student mode: each student's account, the stack set's instance there and its machines."""
    title = f"{config.course_id}: each student's own account ({config.classroom.organizational_unit})"
    console.print(table(title, ["student", "name", "account", "labs (stack set instance)", "notebook", "bucket", "GPU"],
                        [[r.student, r.name, r.account, r.environment, r.notebook_state, r.bucket, r.instance_state]
                         for r in rows]))


def print_status(rows: list[StudentStatus], title: str, fmt: str = "table") -> None:
    if fmt == "json":
        print(json.dumps([asdict(row) for row in rows], indent=2))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["student", "name", "notebook", "notebook_state", "instance", "instance_state", "access_keys"])
        for row in rows:
            # A leading = + - @ makes a spreadsheet evaluate the cell; names come from a roster.
            writer.writerow([f"'{cell}" if str(cell)[:1] in "=+-@" else cell for cell in asdict(row).values()])
        sys.stdout.write(out.getvalue())
    else:
        console.print(table(title, ["student", "name", "notebook", "state", "GPU instance", "state", "access keys"],
                            status_rows(rows)))


