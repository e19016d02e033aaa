"""The CDK CLI's deploy and destroy of a course's stacks, reported as stack events.

The CLI's own lines go to the sink as ToolOutput (the log file); what the user sees is each stack starting,
finishing, or failing with CloudFormation's reason (its first failed resource event, not the CLI's last line).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from course.config import LabConfig
from course.layout import StackUnit
from lab_scripts.inventory import Found, stack_inventory
from labkit.cdk import ASSEMBLY, CdkError, run_cdk
from labkit.emulator import EMULATOR_ACCOUNT
from labkit.events import (Info, PhaseFinished, PhaseStarted, Sink, StackFailed, StackFinished, StackStarted,
                           ToolOutput, ignore)
from labkit.ops.errors import OperationError
from labkit.target import Target


def concurrency(stacks: int) -> int:
    """Stacks the CDK CLI works at once: all of the command's. Per-student stacks are independent of each other
    and the CLI starts a stack as soon as the stacks it depends on are done, so any lower cap only queues students
    behind each other (issue 17: 8 at once made 30 students take 4x one student's time). A class is at most
    MAX_STUDENTS students, about 400 stacks, within CloudFormation's 2000 stacks an account; the CLI's polls of
    that many stacks are what reaches CloudFormation's API rate first (README, "Performance")."""
    return max(1, stacks)


# `LabSageMaker-alice (ml101-LabSageMaker-alice): deploying... [2/10]`, `✅  LabDLAMI (ml101-LabDLAMI)`,
# `✅  LabGuard (ml101-LabGuard): destroyed`, `❌  LabDLAMI (ml101-LabDLAMI) failed: ...`.
_STARTED = re.compile(r"^(?P<id>\S+)(?: \((?P<name>[^)]+)\))?: (?P<verb>deploying|destroying)\.\.\.")
_FINISHED = re.compile(r"^\u2705\s+(?P<id>\S+)(?: \((?P<name>[^)]+)\))?")
_FAILED = re.compile(r"^\u274c\s+(?P<id>\S+)(?: \((?P<name>[^)]+)\))?")


def ensure_bootstrapped(target: Target, config: LabConfig, config_path: Path, emit: Sink = ignore) -> None:
    """The CDK bootstrap stack holds the template and asset bucket every deploy uses."""
    try:
        target.clients("ssm").get_parameter(Name="/cdk-bootstrap/hnb659fds/version")
        return
    except ClientError:
        pass
    if not target.emulator:
        raise OperationError(
            f"account {config.account}/{config.region} is not CDK-bootstrapped; run "
            f"`npx cdk bootstrap aws://{config.account}/{config.region}` once (see README)"
        )
    emit(Info(f"bootstrapping CDK in the emulator (account {EMULATOR_ACCOUNT})"))
    # `--app ""`: the environment is named, so the CLI need not synthesize the app first (5 of its 6 s, and a
    # stray cdk.out in the project root).
    run_cdk(["bootstrap", f"aws://{config.account}/{config.region}", "--app", ""], env=target.env,
            config_path=config_path, echo=lambda line: emit(ToolOutput(line)))


def synthesize(target: Target, config_path: Path, emit: Sink = ignore, *, validate: bool = True,
               allow_expired: bool = False) -> None:
    """The whole app into ASSEMBLY (with CDK's template validation and the cdk-nag gate unless not `validate`)."""
    env = target.env if validate else {**target.env, "CDK_VALIDATION": "false"}
    run_cdk(["synth", "--quiet", "-o", str(ASSEMBLY)], env=env, config_path=config_path,
            allow_expired=allow_expired, echo=lambda line: emit(ToolOutput(line)))


def first_failure(target: Target, stack_name: str) -> str:
    """CloudFormation's reason for a failed stack: its first failed resource event (the cause, not the rollback)."""
    try:
        pages = target.clients("cloudformation").get_paginator("describe_stack_events").paginate(
            StackName=stack_name)
        events = [event for page in pages for event in page["StackEvents"]]
    except ClientError as exc:
        return str(exc.response["Error"].get("Message", exc))
    failed = [event for event in events if str(event.get("ResourceStatus", "")).endswith("FAILED")
              and event.get("ResourceStatusReason")]
    if not failed:
        return ""
    first = min(failed, key=lambda event: event["Timestamp"])  # events come newest first
    return f"{first.get('LogicalResourceId', '')} ({first.get('ResourceType', '')}): {first['ResourceStatusReason']}"


def run_stacks(command: str, config: LabConfig, config_path: Path, target: Target, units: list[StackUnit],
               emit: Sink = ignore, *, allow_expired: bool = False, finished: set[str] | None = None,
               report_failures: bool = True) -> None:
    """`cdk deploy|destroy` of `units`, all at once (`concurrency`), each stack's start and end emitted as it happens.

    A failure raises OperationError naming the stack and CloudFormation's reason (emitted as StackFailed unless
    the caller retries it: `report_failures`). `finished` carries what a first attempt already reported."""
    action = "deploy" if command == "deploy" else "destroy"
    by_id = {unit.construct_id: unit.stack_name for unit in units}
    # The CLI names a stack by construct id in progress lines and by stack name in some error lines.
    by_id |= {unit.stack_name: unit.stack_name for unit in units}
    started: dict[str, float] = {}
    finished = set() if finished is None else finished
    failed_lines: dict[str, str] = {}
    awaiting_reason: list[str] = []  # the CLI prints a failed stack's error on the line after its ❌ line

    def relay(line: str) -> None:
        emit(ToolOutput(line))
        text = line.strip()
        if awaiting_reason and not _STARTED.match(text) and not _FINISHED.match(text):
            failed_lines[awaiting_reason.pop()] = text.lstrip("‣ ").strip()
            return
        if match := _STARTED.match(text):
            stack = by_id.get(match["id"])
            if stack and stack not in started:
                started[stack] = time.monotonic()
                emit(StackStarted(stack, action))
        elif match := _FAILED.match(text):
            stack = by_id.get(match["id"])
            if stack:
                failed_lines[stack] = text
                awaiting_reason.append(stack)
        elif match := _FINISHED.match(text):
            stack = by_id.get(match["id"])
            if stack and stack not in finished:
                finished.add(stack)
                emit(StackFinished(stack, action, time.monotonic() - started.get(stack, time.monotonic())))

    args = [command, "--app", str(ASSEMBLY), *sorted(unit.construct_id for unit in units), "--concurrency",
            str(concurrency(len(units)))]
    if command == "deploy":
        args += ["--progress", "events"]
        if target.emulator:
            # No one to ask in the emulator; and moto's change-set path drops stack outputs, direct keeps them.
            args += ["--require-approval", "never", "--method=direct"]
    else:
        args += ["--force"]
    try:
        run_cdk(args, env=target.env, config_path=config_path, echo=relay, allow_expired=allow_expired)
    except CdkError as exc:
        unfinished = [stack for stack in started if stack not in finished] or list(failed_lines)
        reasons = []
        for stack in unfinished:
            reason = first_failure(target, stack) or failed_lines.get(stack, "") or str(exc)
            if report_failures:
                emit(StackFailed(stack, action, reason))
            reasons.append(f"{stack}: {reason}")
        raise OperationError(f"{action} failed: " + ("; ".join(reasons) if reasons else str(exc))) from None


def deploy(config: LabConfig, config_path: Path, target: Target, labs: list[str], emit: Sink = ignore, *,
           synthesized: bool = False, units: list[StackUnit] | None = None,
           phase: str = "deploying stacks") -> dict[str, list[Found]]:
    """Deploy the stacks of `labs` (or just `units`), synthesizing first unless `synthesized`, and return what
    each lab really created. The deploy is one phase (`phase`) of the caller's view."""
    ensure_bootstrapped(target, config, config_path, emit)
    units = config.stacks(labs) if units is None else units
    if not synthesized:
        emit(Info("synthesizing the course's stacks"))
        synthesize(target, config_path, emit)
    emit(PhaseStarted(phase, len(units)))
    run_stacks("deploy", config, config_path, target, units, emit)
    emit(PhaseFinished(phase))
    inventory: dict[str, list[Found]] = {}
    for unit in units:
        template: dict[str, Any] = json.loads((ASSEMBLY / f"{unit.construct_id}.template.json").read_text())
        inventory.setdefault(unit.lab, []).extend(stack_inventory(target.clients, unit.stack_name, template))
    return inventory
