"""`labctl guard run|resume` and `labctl audit`: the guard's own code run here, and what of the course is left."""

from __future__ import annotations

import datetime as dt

from botocore.exceptions import ClientError

from course.config import LabConfig
from lab_scripts.audit import AuditReport, audit_course
from lab_scripts.guard import run_deployed_guard
from lab_scripts.guard_fn.handler import Report
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


def audit(target: Target, config: LabConfig) -> AuditReport:
    return audit_course(target.clients, config.course_id, config.names.iam_path)
