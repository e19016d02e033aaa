"""`labctl provision`: compare the roster with what is deployed, show the change as a plan, deploy only that.

Also the class's capacity check (quotas) and its cost estimate, which the plan shows before anything is spent.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from course.config import LabConfig
from course.layout import LABS, PER_STUDENT_LABS, STUDENT_ACCOUNT_DIR, StackUnit
from course.naming import STUDENT_ACCOUNT
from lab_scripts import instance
from lab_scripts.cost import CostEstimate, PriceTable, estimate
from lab_scripts.inventory import SKIPPED, Found, live_stack_names
from lab_scripts.organization import ensure_student_accounts
from lab_scripts.quotas import Capacity, account_capacity
from labkit.cdk import ASSEMBLY
from labkit.deployed import STUCK, deployed_instances, deployed_notebooks, dropped_out_stacks, stuck_stacks
from labkit.events import Info, MachineStopped, Sink, ignore
from labkit.ops.errors import RefusedError
from labkit.ops.stacks import deploy, ensure_bootstrapped, synthesize
from labkit.target import Target

DAYS_PER_WEEK = 7
DAYS_PER_MONTH = 30


@dataclass(frozen=True)
class PlannedStack:
    stack_name: str
    lab: str
    student: str
    resources: int
    types: str
    change: str  # "create" | "update" | "unchanged"


@dataclass
class ProvisionPlan:
    """What a provision would change: students added, removed (their stacks stay until `destroy --student`),
    unchanged, and each stack with its resources and whether it is created, updated or left alone."""

    stacks: list[PlannedStack]
    added: list[str]
    removed: list[str]
    unchanged: list[str]
    capacity: list[Capacity]
    cost: CostEstimate
    warnings: list[str] = field(default_factory=list)

    @property
    def to_deploy(self) -> list[str]:
        return [row.stack_name for row in self.stacks if row.change != "unchanged"]

    def to_dict(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed, "unchanged": self.unchanged,
                "stacks": [asdict(row) for row in self.stacks], "capacity": [asdict(c) for c in self.capacity],
                "cost": self.cost.to_dict(), "warnings": self.warnings}


@dataclass
class ProvisionResult:
    plan: ProvisionPlan
    deployed: list[str]
    skipped_types: list[str]
    inventory: dict[str, list[Found]]


def where(config: LabConfig, index: int) -> str:
    """How an error names a student: the roster row when there is a roster, else the course file's list entry."""
    if config.roster:
        row = config.roster[index]
        return f"{config.classroom.roster}: row {row.row}: id '{row.id}'"
    return f"students[{index}] '{config.students[index]}'"


def check_capacity(config: LabConfig, target: Target) -> list[Capacity]:
    """Refuse a class larger than the account's quotas hold, naming the first student that does not fit."""
    if config.classroom.per_account:
        return []  # every student brings their own account and its own quotas
    capacities = account_capacity(
        target.clients, notebook_type=config.sagemaker.instance_type, gpu_type=config.dlami.instance_type,
        stacks_per_student=len(PER_STUDENT_LABS), users_per_student=1)
    # Stacks and users the course already has are counted as in use; redeploying them needs no new quota.
    existing = len(deployed_notebooks(target, config))
    known = [c for c in capacities if c.students is not None]
    if known:
        tightest = min(known, key=lambda c: c.students or 0)
        fits = (tightest.students or 0) + existing
        if fits < len(config.students):
            raise RefusedError(f"{where(config, fits)} does not fit the account: {tightest.description} holds "
                               f"{fits} students; request a quota increase or use account-per-student mode")
    return capacities


def class_cost(config: LabConfig, prices: PriceTable, *, today: dt.date | None = None) -> CostEstimate:
    """The course until its expiry date, with the idle stops as configured and without them."""
    days = max(1, (config.expires - (today or dt.date.today())).days)
    return estimate(
        students=len(config.students), weeks=days / DAYS_PER_WEEK,
        notebook_type=config.sagemaker.instance_type, notebook_volume_gb=config.sagemaker.volume_gb,
        notebook_idle_minutes=config.sagemaker.idle_minutes,
        gpu_type=config.dlami.instance_type, gpu_volume_gb=config.dlami.volume_gb,
        gpu_idle_minutes=config.dlami.idle_minutes, prices=prices,
    )


def budget_warning(config: LabConfig, cost: CostEstimate, *, today: dt.date | None = None) -> str | None:
    """One line when the estimate for a month exceeds the course's monthly budget, naming both numbers."""
    days = max(1, (config.expires - (today or dt.date.today())).days)
    monthly = cost.with_idle_stop_usd * min(1.0, DAYS_PER_MONTH / days)
    if monthly <= config.budget_usd:
        return None
    return (f"the estimate for a month ({monthly:.0f} USD with idle stop) exceeds course.budget_usd "
            f"({config.budget_usd:.0f} USD a month): raise the budget or expect its alerts")


def _template(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _kinds(template: dict[str, Any]) -> tuple[int, str]:
    kinds: dict[str, int] = {}
    for resource in template.get("Resources", {}).values():
        if resource["Type"] != "AWS::CDK::Metadata":
            kind = resource["Type"].rsplit("::", 1)[-1]
            kinds[kind] = kinds.get(kind, 0) + 1
    return sum(kinds.values()), ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))


def _deployed_template(target: Target, stack_name: str) -> dict[str, Any] | None:
    body = target.clients("cloudformation").get_template(StackName=stack_name)["TemplateBody"]
    return body if isinstance(body, dict) else json.loads(body)


def _change(target: Target, unit: StackUnit, template: dict[str, Any], live: set[str]) -> str:
    if unit.stack_name not in live:
        return "create"
    # The CDK CLI skips a stack whose template is unchanged; the plan says so before it runs.
    return "unchanged" if _deployed_template(target, unit.stack_name) == template else "update"


def plan(config: LabConfig, target: Target, assembly: Path = ASSEMBLY, *,
         capacity: list[Capacity] | None = None) -> ProvisionPlan:
    """Each stack of the course (synthesized in `assembly`) against what is deployed now; changes nothing."""
    cfn = target.clients("cloudformation")
    live = live_stack_names(cfn)
    rows = []
    for unit in config.stacks():
        template = _template(assembly / f"{unit.construct_id}.template.json")
        resources, types = _kinds(template)
        rows.append(PlannedStack(unit.stack_name, unit.lab, unit.student or "(class)", resources, types,
                                 _change(target, unit, template, live)))
    if config.classroom.per_account:
        # What the stack set puts in every student's account (LabClassroom writes it beside its own template).
        resources, types = _kinds(_template(assembly / STUDENT_ACCOUNT_DIR / f"{STUDENT_ACCOUNT}.template.json"))
        rows.append(PlannedStack(config.names.stack(STUDENT_ACCOUNT), STUDENT_ACCOUNT, "(each account)", resources,
                                 types, "with LabClassroom"))
    student_rows: dict[str, list[PlannedStack]] = {}
    for row in rows:
        if row.student in config.students:
            student_rows.setdefault(row.student, []).append(row)
    added = [s for s in config.students if student_rows.get(s) and all(r.change == "create"
                                                                         for r in student_rows[s])]
    unchanged = [s for s in config.students if s not in added]
    removed = sorted({unit.student for unit in dropped_out_stacks(target, config) if unit.student})
    cost = class_cost(config, PriceTable.bundled())
    warnings = [line for line in [budget_warning(config, cost)] if line]
    return ProvisionPlan(rows, added, removed, unchanged, capacity or [], cost, warnings)


def prepare(config: LabConfig, config_path: Path, target: Target, emit: Sink = ignore) -> ProvisionPlan:
    """Checks (stuck stacks, quotas), bootstrap and synthesis, then the plan: everything before a deploy."""
    stuck = stuck_stacks(target, config)
    if stuck:
        name, status = next(iter(stuck.items()))
        raise RefusedError(f"stack {name} is {status} ({STUCK[status]}); `labctl repair` deletes it "
                           "(archiving any bucket it holds), then provision again")
    capacity = check_capacity(config, target)
    ensure_bootstrapped(target, config, config_path, emit)
    emit(Info("synthesizing the course's stacks"))
    synthesize(target, config_path, emit)
    return plan(config, target, capacity=capacity)


def _stop_new_instances(target: Target, config: LabConfig, students: list[str], emit: Sink) -> None:
    """`[dlami] start = "stopped"`: each GPU instance just created stops until its student starts it."""
    ec2 = target.clients("ec2")
    found = deployed_instances(target, config)
    for student in students:
        if student in found:
            state = instance.stop(ec2, found[student], delay=target.wait_delay)
            emit(MachineStopped("instance", f"{found[student]} ({student})", state.state))


def provision(config: LabConfig, config_path: Path, target: Target, the_plan: ProvisionPlan,
              emit: Sink = ignore) -> ProvisionResult:
    """Deploy what the plan creates or updates (nothing else), after creating student accounts if needed."""
    if config.classroom.per_account:
        rows = [(row.id, row.email, row.account) for row in config.roster]
        accounts = ensure_student_accounts(target.clients("organizations"), str(config.classroom.organizational_unit),
                                           config.course_id, rows,
                                           echo=lambda line: emit(Info(line)))
        emit(Info(f"{len(accounts)} student accounts in {config.classroom.organizational_unit}"))
    wanted = set(the_plan.to_deploy)
    units = [unit for unit in config.stacks() if unit.stack_name in wanted]
    inventory: dict[str, list[Found]] = {}
    if units:
        inventory = deploy(config, config_path, target, list(LABS), emit, synthesized=True, units=units)
    if config.dlami.start == "stopped":
        _stop_new_instances(target, config, [unit.student for unit in units if unit.lab == "LabDLAMI" and unit.student],
                            emit)
    skipped = sorted({row.type for found in inventory.values() for row in found if row.state == SKIPPED})
    return ProvisionResult(the_plan, [unit.stack_name for unit in units], skipped, inventory)
