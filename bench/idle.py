"""Idle dollars on a simulated term: labkit's idle rules and spend cap against the anchors' rules, same trace.

    python -m bench idle            # about 7 s on 2 cores; writes bench/results/idle.json and idle.md

A seeded trace of 30 students, 2 sessions a week for 12 weeks, on a GPU notebook (ml.g4dn.xlarge) or a GPU
instance (g4dn.xlarge): normal sessions, forgotten ones (tab or terminal left open, or closed), silent GPU
training started from a terminal (90 % GPU, 3 % CPU, no input for hours), a kernel busy for hours, after-hours
work, and one runaway GPU loop. Time runs in minutes on an injected clock. Each rule set is replayed on the
same trace:

- labkit: the GPU instance's alarm (`IdleRule`, minute datapoints from the agent, 1 minute publishing lag and
  1 minute alarm evaluation lag), the notebook's own checker (`notebook_autostop.idle_minutes` and
  `gpu_busy`, cron every 5 minutes), and the guard's real `Guard` run every 5 minutes against in-memory
  clients (idle backstop, spend meter, per-student cap);
- labkit before GPU-aware idle: EC2's 5-minute CPU alarm and the kernel/terminal checker without the GPU;
- the SageMaker auto-stop sample: 60 minutes, every 5 minutes, kernels only (terminals and GPUs ignored;
  GPU instances have nothing);
- billing-lag caps: no idle stop; the day's spend is seen 6 h or 24 h late and stops the student at the cap.

Figures: billed idle minutes per forgotten session (from the student leaving, or a training ending, to the
stop), idle USD paid and avoided (against nothing stopping until the student's next session), wrongful stops
(a stop while the student works, a job trains or a kernel is busy), and the cap overshoot (USD over the cap
on the worst student-day).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import Figure, Section
from course.catalog import INSTANCES
from lab_scripts import notebook_autostop as autostop
from lab_scripts.guard_fn import handler
from lab_scripts.guard_fn.handler import IdleRule, Policy, Settings
from lab_scripts.prices import NOTEBOOK_USD_PER_HOUR

UTC = dt.timezone.utc
EPOCH = dt.datetime(2027, 1, 4, tzinfo=UTC)  # a Monday
DAYS, STUDENTS, SESSIONS_PER_WEEK = 84, 30, 2
MINUTES = DAYS * 1440
NOTEBOOK_TYPE, GPU_TYPE = "ml.g4dn.xlarge", "g4dn.xlarge"
PRICE = {"notebook": NOTEBOOK_USD_PER_HOUR[NOTEBOOK_TYPE], "instance": INSTANCES[GPU_TYPE].usd_per_hour}
CAP_USD = 8.0  # per student and day: above a long training day (6 h on the GPU notebook is 4.4 USD)
GUARD_MINUTES = 5
COURSE = "ml101"
BUSY_KINDS = frozenset({"active", "training", "kernel"})
# What each kind of minute looks like: CPU %, GPU %, and whether a Jupyter tab is open (it polls the server).
SIGNALS = {"active": (2.0, 0.0, True), "training": (3.0, 90.0, False), "kernel": (30.0, 0.0, False),
           "idle_open": (1.5, 0.0, True), "idle": (1.5, 0.0, False), "runaway": (4.0, 100.0, False)}


# -- the trace ----------------------------------------------------------------------------------------------------
@dataclass
class Segment:
    start: int
    end: int
    kind: str
    inputs: frozenset[int] = frozenset()  # minutes with a keystroke or a cell run (active segments)


@dataclass
class Session:
    student: int
    machine: str  # "notebook" or "instance"
    start: int
    segments: list[Segment]
    left: int  # when the student walked away from a running machine (forgotten), else -1
    stops_itself: bool  # the student stops the machine at the end


def _active(rng: random.Random, start: int, length: int) -> Segment:
    """A student at work: input every few minutes (pauses to read or think of up to 8 minutes)."""
    inputs, minute = set(), start
    while minute < start + length:
        inputs.add(minute)
        minute += 1 + min(7, int(rng.expovariate(1 / 2.5)))
    return Segment(start, start + length, "active", frozenset(inputs))


def make_trace(seed: int = 18) -> list[Session]:
    rng = random.Random(seed)
    sessions = []
    runaway_student, runaway_week = rng.randrange(STUDENTS), 5
    for student in range(STUDENTS):
        for week in range(DAYS // 7):
            for day in sorted(rng.sample(range(5), SESSIONS_PER_WEEK)):
                after_hours = rng.random() < 0.15
                hour = rng.uniform(21.5, 23.5) if after_hours else rng.uniform(9, 18)
                start = (week * 7 + day) * 1440 + int(hour * 60)
                machine = rng.choice(("notebook", "instance"))
                kind = rng.choices(("normal", "forgotten", "open", "training", "kernel"), (50, 15, 15, 12, 8))[0]
                if kind == "kernel" and machine == "instance":
                    kind = "training"
                work = _active(rng, start, rng.randint(45, 150))
                segments, left, stops = [work], -1, True
                if kind in {"forgotten", "open"}:
                    segments.append(Segment(work.end, -1, "idle_open" if kind == "open" else "idle"))
                    left, stops = work.end, False
                elif kind == "training":
                    train = Segment(work.end, work.end + rng.randint(120, 360), "training")
                    # The student comes back the next day: the machine idles from the training's end.
                    segments += [train, Segment(train.end, -1, "idle")]
                    left, stops = train.end, False
                elif kind == "kernel":
                    busy = Segment(work.end, work.end + rng.randint(60, 180), "kernel")
                    segments += [busy, _active(rng, busy.end, 15)]
                sessions.append(Session(student, machine, start, segments, left, stops))
    # One runaway: a GPU loop left running on a Tuesday evening, at 100 % GPU, never ending by itself.
    start = (runaway_week * 7 + 1) * 1440 + 19 * 60
    work = _active(rng, start, 30)
    sessions.append(Session(runaway_student, "instance", start, [work, Segment(work.end, -1, "runaway")], -1, False))
    sessions.sort(key=lambda s: s.start)
    # Open-ended segments last until the same machine's next session (the student finds it running) or the end.
    nxt: dict[tuple[int, str], int] = {}
    for session in reversed(sessions):
        key = (session.student, session.machine)
        for segment in session.segments:
            if segment.end == -1:
                segment.end = nxt.get(key, MINUTES)
            segment.end = min(segment.end, nxt.get(key, MINUTES), MINUTES)
        nxt[key] = session.start
    return sessions


# -- the rules ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rules:
    name: str
    instance: str = ""  # "gpu" (labkit's alarm), "cpu" (EC2 CPU alarm), "" (none)
    notebook: str = ""  # "labkit" (kernels, terminals, GPU), "kernels+terminals", "kernels" (the sample), ""
    idle_minutes: int = 60
    guard: bool = False  # labkit's guard, every 5 minutes, with the per-student cap
    billing_lag_hours: int = 0  # a cap acting on billing data this late (0: none)


RULES = (
    Rules("labkit, idle 10 min (GPU-aware) + guard cap", "gpu", "labkit", 10, guard=True),
    Rules("labkit, idle 60 min (the default) + guard cap", "gpu", "labkit", 60, guard=True),
    Rules("labkit before: EC2 CPU alarm + kernel/terminal check, 60 min", "cpu", "kernels+terminals", 60),
    Rules("SageMaker auto-stop sample (60 min, kernels only)", "", "kernels", 60),
    Rules("billing-lag cap, 6 h", billing_lag_hours=6),
    Rules("billing-lag cap, 24 h", billing_lag_hours=24),
)


@dataclass
class Machine:
    student: int
    kind: str  # "notebook" / "instance"
    ident: str
    running: bool = False
    started: int = 0
    stopped: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    segments: deque[Segment] = field(default_factory=deque)
    session: Session | None = None
    # Rule state.
    streak: int = 0  # consecutive idle datapoints (alarm)
    pending: deque[bool] = field(default_factory=deque)  # datapoints not yet seen by the alarm
    last_input: int = -10
    last_kernel: int = -1
    last_gpu: int = -1
    last_http: int = -1
    history: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=180))

    def segment(self, minute: int) -> Segment | None:
        while self.segments and self.segments[0].end <= minute:
            self.segments.popleft()
        return self.segments[0] if self.segments and self.segments[0].start <= minute else None


def _minute_at(moment: dt.datetime) -> int:
    return int((moment - EPOCH).total_seconds() // 60)


def _at(minute: int) -> dt.datetime:
    return EPOCH + dt.timedelta(minutes=minute)


class FakeAws:
    """Just enough EC2, SageMaker, CloudWatch and Logs for the guard's real `Guard`, over the simulation's state."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def __call__(self, service: str) -> Any:
        return self

    # sagemaker
    def list_notebook_instances(self, **_: Any) -> dict[str, Any]:
        rows = []
        for m in self.sim.visible("notebook"):
            status = "InService" if m.running else "Stopped"
            rows.append({"NotebookInstanceName": m.ident, "NotebookInstanceArn": f"arn:nb/{m.ident}",
                         "NotebookInstanceStatus": status, "InstanceType": NOTEBOOK_TYPE,
                         "LastModifiedTime": _at(m.started if m.running else m.stopped)})
        return {"NotebookInstances": rows}

    def list_tags(self, ResourceArn: str) -> dict[str, Any]:
        tags = self.sim.by_id[ResourceArn.split("/", 1)[1]].tags
        return {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}

    def stop_notebook_instance(self, NotebookInstanceName: str) -> None:
        self.sim.stop(self.sim.by_id[NotebookInstanceName], "guard")

    def add_tags(self, ResourceArn: str, Tags: list[dict[str, str]]) -> None:
        self.sim.by_id[ResourceArn.split("/", 1)[1]].tags.update({t["Key"]: t["Value"] for t in Tags})

    def delete_tags(self, ResourceArn: str = "", TagKeys: tuple[str, ...] = (), Resources: tuple[str, ...] = (),
                    Tags: tuple[dict[str, str], ...] = ()) -> None:
        """SageMaker's (ResourceArn, TagKeys) and EC2's (Resources, Tags) in one."""
        if ResourceArn:
            machine, keys = self.sim.by_id[ResourceArn.split("/", 1)[1]], list(TagKeys)
        else:
            machine, keys = self.sim.by_id[Resources[0]], [t["Key"] for t in Tags]
        for key in keys:
            machine.tags.pop(key, None)

    # ec2
    def describe_instances(self, **_: Any) -> dict[str, Any]:
        rows = []
        for m in self.sim.visible("instance"):
            reason = "" if m.running else f"User initiated ({_at(m.stopped):%Y-%m-%d %H:%M:%S} GMT)"
            rows.append({"InstanceId": m.ident, "InstanceType": GPU_TYPE, "LaunchTime": _at(m.started),
                         "State": {"Name": "running" if m.running else "stopped"}, "StateTransitionReason": reason,
                         "Tags": [{"Key": k, "Value": v} for k, v in m.tags.items()]})
        return {"Reservations": [{"Instances": rows}]}

    def stop_instances(self, InstanceIds: list[str]) -> None:
        self.sim.stop(self.sim.by_id[InstanceIds[0]], "guard")

    def create_tags(self, Resources: list[str], Tags: list[dict[str, str]]) -> None:
        self.sim.by_id[Resources[0]].tags.update({t["Key"]: t["Value"] for t in Tags})

    # cloudwatch: 5-minute maxima of the minute history
    def get_metric_statistics(self, Namespace: str, MetricName: str, Dimensions: list[dict[str, str]],
                              StartTime: dt.datetime, EndTime: dt.datetime, **_: Any) -> dict[str, Any]:
        machine = self.sim.by_id[Dimensions[0]["Value"]]
        index = {"CPUUtilization": 0, handler.GPU_METRIC: 1, handler.INPUT_METRIC: 2}[MetricName]
        minutes = min(len(machine.history), _minute_at(EndTime) - _minute_at(StartTime),
                      self.sim.now - machine.started)
        values = [row[index] for row in list(machine.history)[-minutes:]] if minutes > 0 else []
        return {"Datapoints": [{"Maximum": max(values[i:i + 5])} for i in range(0, len(values), 5)]}

    # logs: an open Jupyter tab polls the server, and each request is a log event
    def describe_log_streams(self, logStreamNamePrefix: str, **_: Any) -> dict[str, Any]:
        machine = self.sim.by_id[logStreamNamePrefix.rstrip("/")]
        if machine.last_http < 0:
            return {"logStreams": []}
        return {"logStreams": [{"lastEventTimestamp": int(_at(machine.last_http).timestamp() * 1000)}]}


@dataclass
class Outcome:
    idle_minutes: list[int] = field(default_factory=list)  # billed idle minutes per forgotten session
    idle_usd: float = 0.0
    baseline_usd: float = 0.0  # what the forgotten sessions' idle would cost if nothing stopped them
    wrongful: int = 0
    cap_stops: int = 0
    denied_starts: int = 0
    overshoot_usd: float = 0.0  # worst USD past the cap when a cap stopped a student
    runaway_usd: float = 0.0
    total_usd: float = 0.0
    guard_runs: int = 0
    metered_usd: float = 0.0  # the guard's own meter over the course, read at the end (guard rows)
    seconds: float = 0.0


class Simulation:
    def __init__(self, rules: Rules, trace: list[Session]) -> None:
        self.rules, self.trace, self.now = rules, trace, 0
        self.machines: dict[tuple[int, str], Machine] = {}
        for student in range(STUDENTS):
            for kind in ("notebook", "instance"):
                ident = f"{COURSE}-s{student:02d}" if kind == "notebook" else f"i-{student:017x}"
                self.machines[(student, kind)] = Machine(student, kind, ident, tags={
                    handler.TAG_COURSE: COURSE, handler.TAG_STUDENT: f"s{student:02d}"})
        self.by_id = {m.ident: m for m in self.machines.values()}
        self.out = Outcome()
        self.running: list[Machine] = []
        self.touched: set[int] = set()  # students with a machine running since the last guard run
        self.blocked: dict[int, int] = {}  # billing-lag caps: student -> minute until which starts are refused
        self.daily: dict[tuple[int, int], float] = {}  # (student, day) -> USD billed
        self.hourly: dict[tuple[int, int], float] = {}  # (student, hour) -> USD billed
        self.idle_by_session: dict[int, int] = {}
        self.guard_stops: list[tuple[Machine, bool]] = []
        self.rule = IdleRule(5, 5)
        self.settings = Settings(
            course=COURSE, expires=(EPOCH + dt.timedelta(days=DAYS + 1)).date(), stacks=(f"{COURSE}-LabDLAMI",),
            iam_path=f"/labkit/{COURSE}/", prices=((GPU_TYPE, PRICE["instance"]), (NOTEBOOK_TYPE, PRICE["notebook"])),
            policy=Policy(dry_run=False, idle_minutes=120, max_usd_per_student_day=CAP_USD))
        self.aws = FakeAws(self)

    # -- machine lifecycle -------------------------------------------------------------------------------------
    def visible(self, kind: str) -> list[Machine]:
        """What a describe call shows the guard: machines of students active since its last run, and marked ones
        (the others' ledgers are closed and untouched, so leaving them out changes no decision)."""
        return [m for m in self.machines.values() if m.kind == kind and (
            m.student in self.touched or handler.TAG_CAPPED in m.tags)]

    def start(self, machine: Machine, session: Session) -> None:
        if not machine.running:
            # The students' policy denies a start while the guard's cap mark (a date) is on the machine.
            if len(machine.tags.get(handler.TAG_CAPPED, "")) == 10 or self.blocked.get(machine.student, -1) > self.now:
                self.out.denied_starts += 1
                return
            machine.running, machine.started = True, self.now
            machine.streak, machine.pending = 0, deque([False, False])  # the agent's first minutes: no data = busy
            machine.last_kernel = machine.last_gpu = machine.last_http = machine.last_input = -10
            machine.history.clear()
            self.running.append(machine)
        machine.session = session
        machine.segments = deque(session.segments)
        self.touched.add(machine.student)

    def stop(self, machine: Machine, why: str) -> None:
        """Stop the machine; count a wrongful stop (busy work stopped by an idle rule) or a cap stop."""
        if not machine.running:
            return
        segment = machine.segment(self.now)
        busy = segment is not None and segment.kind in BUSY_KINDS
        if why == "guard":
            self.guard_stops.append((machine, busy))  # judged by the report's reason (guard_run)
        elif why == "cap":
            self.cap_stop(machine)
        elif why != "student":
            self.out.wrongful += busy
        machine.running, machine.stopped = False, self.now
        self.running.remove(machine)

    def cap_stop(self, machine: Machine) -> None:
        self.out.cap_stops += 1
        if self.rules.billing_lag_hours:
            hour = self.now // 60
            spent = sum(self.hourly.get((machine.student, h), 0.0) for h in range(hour - 23, hour + 1))
        else:
            spent = self.daily.get((machine.student, self.now // 1440), 0.0)
        self.out.overshoot_usd = max(self.out.overshoot_usd, spent - CAP_USD)

    # -- one minute ----------------------------------------------------------------------------------------------
    def tick(self, machine: Machine) -> None:
        price = PRICE[machine.kind] / 60
        day, hour = self.now // 1440, self.now // 60
        self.daily[(machine.student, day)] = self.daily.get((machine.student, day), 0.0) + price
        if self.rules.billing_lag_hours:
            self.hourly[(machine.student, hour)] = self.hourly.get((machine.student, hour), 0.0) + price
        self.out.total_usd += price
        segment = machine.segment(self.now)
        kind = segment.kind if segment is not None else "idle"
        if kind in {"idle", "idle_open"} and machine.session is not None and machine.session.left >= 0:
            self.out.idle_usd += price
            self.idle_by_session[id(machine.session)] = self.idle_by_session.get(id(machine.session), 0) + 1
        elif kind == "runaway":
            self.out.runaway_usd += price
        cpu, gpu, tab = SIGNALS[kind]
        typed = segment is not None and self.now in segment.inputs
        if typed:
            cpu, gpu = 25.0, (30.0 if machine.kind == "instance" else 0.0)
            machine.last_input = self.now
        kernel_busy = kind == "kernel" or (typed and machine.kind == "notebook")
        if kernel_busy:
            machine.last_kernel = self.now
        if tab:
            machine.last_http = self.now
        terminal = 1.0 if self.now - machine.last_input <= 1 else 0.0  # input in the last 90 s
        machine.history.append((cpu, gpu, terminal))
        rules = self.rules
        if machine.kind == "instance" and rules.instance == "gpu":
            machine.pending.append(self.rule.busy(cpu, gpu, terminal) < 1)
            if len(machine.pending) > 2:  # 1 minute to publish, 1 minute to evaluate
                machine.streak = machine.streak + 1 if machine.pending.popleft() else 0
                if machine.streak >= rules.idle_minutes:
                    self.stop(machine, "alarm")
        elif machine.kind == "instance" and rules.instance == "cpu" and (self.now - machine.started) % 5 == 4:
            # EC2 basic monitoring: a 5-minute maximum, seen by the alarm a period after it ends.
            machine.pending.append(max(row[0] for row in list(machine.history)[-5:]) < 5)
            if len(machine.pending) > 3:
                machine.streak = machine.streak + 1 if machine.pending.popleft() else 0
                if machine.streak * 5 >= rules.idle_minutes:
                    self.stop(machine, "alarm")
        elif machine.kind == "notebook" and rules.notebook and self.now % 5 == 0:
            self.notebook_check(machine, kernel_busy, gpu)

    def notebook_check(self, machine: Machine, kernel_busy: bool, gpu: float) -> None:
        """The on-notebook checker, from cron every 5 minutes, with the real functions."""
        stamp = _at(max(machine.last_kernel, machine.started)).isoformat()
        sessions = [{"kernel": {"execution_state": "busy" if kernel_busy else "idle", "last_activity": stamp}}]
        terminals = ([{"last_activity": _at(machine.last_input).isoformat()}]
                     if machine.last_input >= 0 and self.rules.notebook != "kernels" else [])
        started = _at(machine.started)
        if self.rules.notebook == "labkit":
            if autostop.gpu_busy(f"{gpu:.0f}\n"):  # what nvidia-smi would print for this minute
                machine.last_gpu = self.now
            if machine.last_gpu >= 0:
                started = max(started, _at(machine.last_gpu))
        if autostop.idle_minutes(sessions, terminals, started, _at(self.now)) >= self.rules.idle_minutes:
            self.stop(machine, "checker")

    def guard_run(self) -> None:
        """The guard's real code; its stops come back through the fake clients and are judged by their reason:
        a stop for the cap is what the cap is for, any other stop of busy work is wrongful."""
        self.guard_stops: list[tuple[Machine, bool]] = []
        report = handler.run(self.settings, self.aws, now=_at(self.now), sleep=lambda s: None)
        self.out.guard_runs += 1
        reasons = {a.target: a.reason for a in report.actions if a.kind in {handler.STOP_NOTEBOOK,
                                                                              handler.STOP_INSTANCE}}
        for machine, busy in self.guard_stops:
            if "spend cap" in reasons.get(machine.ident, ""):
                self.cap_stop(machine)
            else:
                self.out.wrongful += busy

    def billing_lag(self) -> None:
        """Once an hour: each running student's last-24-hours spend as billing shows it, `lag` hours late."""
        lag, hour = self.rules.billing_lag_hours, self.now // 60
        for student in {m.student for m in self.running}:
            seen = sum(self.hourly.get((student, h), 0.0) for h in range(hour - lag - 24, hour - lag))
            if seen >= CAP_USD:
                self.blocked[student] = self.now + 1440
                for machine in [m for m in self.running if m.student == student]:
                    self.stop(machine, "cap")

    def run(self) -> Outcome:
        began = time.perf_counter()
        starts: dict[int, list[Session]] = {}
        for session in self.trace:
            starts.setdefault(session.start, []).append(session)
        ends: dict[int, list[tuple[Machine, Session]]] = {}
        for self.now in range(MINUTES):
            for session in starts.get(self.now, ()):
                machine = self.machines[(session.student, session.machine)]
                self.start(machine, session)
                if machine.running and session.stops_itself:
                    ends.setdefault(session.segments[-1].end, []).append((machine, session))
            for machine, session in ends.pop(self.now, ()):
                if machine.session is session:
                    self.stop(machine, "student")
            for machine in list(self.running):
                self.tick(machine)
            if self.rules.billing_lag_hours and self.now % 60 == 59:
                self.billing_lag()
            if self.rules.guard and self.now % GUARD_MINUTES == 0:
                self.touched |= {m.student for m in self.running}
                if self.touched or any(handler.TAG_CAPPED in m.tags for m in self.machines.values()):
                    self.guard_run()
                self.touched = {m.student for m in self.running}
        if self.rules.guard:
            # One more run that sees every machine: the meter's course total against what was billed.
            self.touched = set(range(STUDENTS))
            report = handler.run(self.settings, self.aws, now=_at(self.now), sleep=lambda s: None)
            self.out.metered_usd = sum(report.spend.get("course", {}).values())
        for session in self.trace:
            if session.left >= 0:
                idle = next(seg for seg in session.segments if seg.kind in {"idle", "idle_open"})
                self.out.idle_minutes.append(self.idle_by_session.get(id(session), 0))
                self.out.baseline_usd += (idle.end - idle.start) * PRICE[session.machine] / 60
        self.out.seconds = time.perf_counter() - began
        return self.out


def replay(rules: Rules, trace: list[Session]) -> Outcome:
    return Simulation(rules, trace).run()


# -- the report ---------------------------------------------------------------------------------------------------
COLUMNS = ("rules", "idle min per forgotten session: median", "worst", "idle USD paid", "idle USD avoided",
           "wrongful stops", "cap overshoot USD", "runaway USD", "term USD")


def row(rules: Rules, out: Outcome) -> list[str]:
    minutes = out.idle_minutes or [0]
    overshoot = f"{out.overshoot_usd:.2f}" if out.cap_stops else "no cap"
    return [rules.name, f"{statistics.median(minutes):.0f}", f"{max(minutes)}", f"{out.idle_usd:.2f}",
            f"{out.baseline_usd - out.idle_usd:.2f}", str(out.wrongful), overshoot, f"{out.runaway_usd:.2f}",
            f"{out.total_usd:.2f}"]


def trace_facts(trace: list[Session]) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    for session in trace:
        for segment in session.segments[1:]:
            kinds[segment.kind] = kinds.get(segment.kind, 0) + 1
    after = sum(1 for s in trace if (s.start % 1440) >= 21 * 60)
    return {"sessions": len(trace), "forgotten": sum(1 for s in trace if s.left >= 0), "after_hours": after,
            "segments": kinds}


def bench_idle(out_dir: Path | None = None) -> tuple[list[list[str]], dict[str, Any]]:
    trace = make_trace()
    results = [(rules, replay(rules, trace)) for rules in RULES]
    table = [row(rules, out) for rules, out in results]
    labkit = results[0][1]
    period_usd = GUARD_MINUTES / 60 * PRICE["notebook"]
    targets = {
        "worst idle minutes <= 15": max(labkit.idle_minutes) <= 15,
        "wrongful stops == 0": labkit.wrongful == 0,
        f"cap overshoot <= one guard period at the running price ({period_usd:.3f} USD)":
            labkit.overshoot_usd <= period_usd,
    }
    facts = {"trace": trace_facts(trace), "cap_usd_per_student_day": CAP_USD, "guard_minutes": GUARD_MINUTES,
             "prices": PRICE, "targets": targets,
             "runs": {rules.name: dataclasses.asdict(out) | {"idle_minutes": sorted(out.idle_minutes)[-5:]}
                      for rules, out in results}}
    return table, facts


def markdown_table(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table]
    return "\n".join(lines)


def main(out_dir: Path) -> int:
    began = time.perf_counter()
    table, facts = bench_idle()
    seconds = time.perf_counter() - began
    trace = facts["trace"]
    header = (f"Simulated term: {STUDENTS} students, {SESSIONS_PER_WEEK} sessions a week for {DAYS // 7} weeks "
              f"({trace['sessions']} sessions, {trace['forgotten']} forgotten, {trace['after_hours']} after 21:00, "
              f"one runaway); cap {CAP_USD:.0f} USD per student and day; replayed in {seconds:.1f} s.")
    labkit = facts["runs"][RULES[0].name]
    metered = (f"The guard's meter (machines' own start/stop times and its ledger tags) counted "
               f"{labkit['metered_usd']:.2f} USD of compute for the term; billed: {labkit['total_usd']:.2f} USD.")
    text = header + "\n\n" + markdown_table(table) + "\n\nTargets (labkit, idle 10 min): " + ", ".join(
        f"{name}: {'met' if ok else 'NOT met'}" for name, ok in facts["targets"].items()) + "\n\n" + metered + "\n"
    print(text)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "idle.md").write_text(text)
    (out_dir / "idle.json").write_text(json.dumps({"seconds": round(seconds, 2), "table": table, **facts},
                                                  indent=2, default=str) + "\n")
    print(f"wrote {out_dir / 'idle.md'} and {out_dir / 'idle.json'}")
    return 0


def bench_idle_sections() -> list[Section]:
    """For `python -m bench --only idle`: labkit's figures with their targets, the anchors' as facts."""
    table, facts = bench_idle()
    labkit = facts["runs"][RULES[0].name]
    section = Section(f"Idle dollars on a simulated term ({RULES[0].name})")
    worst = max(labkit["idle_minutes"] or [0])
    section.add(Figure("billed idle minutes per forgotten session, worst", "min", (float(worst),)).within(
        15, "≤ 15 min"))
    section.add(Figure("wrongful stops of busy work", "stops", (float(labkit["wrongful"]),)).within(0, "0"))
    period_usd = GUARD_MINUTES / 60 * PRICE["notebook"]
    section.add(Figure("spend-cap overshoot", "USD", (labkit["overshoot_usd"],)).within(
        period_usd, f"≤ {period_usd:.3f} USD (one guard period)"))
    section.add(Figure("idle USD paid for the term", "USD", (labkit["idle_usd"],)))
    section.facts.update(table=[dict(zip(COLUMNS, cells)) for cells in table], trace=facts["trace"])
    return [section]
