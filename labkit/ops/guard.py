"""`labctl guard run|resume` and `labctl audit`: the guard's own code run here, and what of the course is left."""

from __future__ import annotations

import dataclasses
import datetime as dt

from botocore.exceptions import ClientError

from course.config import LabConfig
from lab_scripts.audit import AuditReport, audit_course
from lab_scripts.guard import allow_student, run_deployed_guard
from lab_scripts.guard_fn.handler import Policy, Report
from labkit.ops.errors import RefusedError
from labkit.target import Target


def guard_run(target: Target, config: LabConfig, *, now: dt.datetime | None = None,
              dry_run: bool | None = None) -> Report:
    """One run of the deployed guard's code, here, with its deployed environment."""
    function = config.names.guard.function
    try:
        return run_deployed_guard(target.clients, function, now=now, dry_run=dry_run,
                                  poll_seconds=target.wait_delay)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            raise RefusedError(f"LabGuard is not deployed: no function {function} (`labctl provision` deploys "
                               "it)") from None
        raise


def guard_resume(target: Target, config: LabConfig) -> str:
    """Turn the guard's schedule back on (an interrupted teardown leaves it paused, with the machines stopped)."""
    rule = config.names.guard.schedule
    try:
        target.clients("events").enable_rule(Name=rule)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            raise RefusedError(f"LabGuard is not deployed: no schedule {rule}") from None
        raise
    return f"{rule}: enabled"


def allow(target: Target, config: LabConfig, student: str) -> list[str]:
    """Lift a student's spend cap for the rest of the day: their machines may start again."""
    policy = Policy(**dataclasses.asdict(config.guard.policy))
    marked = allow_student(target.clients, config.course_id, student, policy)
    if not marked:
        raise RefusedError(f"no course machines tagged labkit:student={student} (is {student} provisioned?)")
    return marked


def audit(target: Target, config: LabConfig) -> AuditReport:
    return audit_course(target.clients, config.course_id, config.names.iam_path)
