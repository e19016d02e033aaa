"""Run LabGuard's handler here, with the deployed function's environment (`labctl guard run`, the demo).

For an endpoint that stores the function but cannot run it (the embedded emulator has no Docker), and for
an instructor who wants to see now what the next scheduled run would do (`--dry-run`). The code is the
function's own; only the credentials differ (the caller's, not the function role's).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from lab_scripts.guard_fn.handler import (ALLOWED_PREFIX, TAG_CAPPED, TAG_COURSE, TAG_STUDENT, Policy, Report,
                                          Settings, run)

ClientFactory = Callable[[str], Any]


def deployed_settings(clients: ClientFactory, function_name: str) -> Settings:
    variables = clients("lambda").get_function_configuration(FunctionName=function_name)["Environment"]["Variables"]
    return Settings.from_env(variables)


def run_deployed_guard(
    clients: ClientFactory,
    function_name: str,
    *,
    now: dt.datetime | None = None,
    dry_run: bool | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 15,
) -> Report:
    """One guard run at `now` (default: the real time); `dry_run` overrides the deployed setting."""
    settings = deployed_settings(clients, function_name)
    if dry_run is not None:
        settings = dataclasses.replace(settings, policy=dataclasses.replace(settings.policy, dry_run=dry_run))
    return run(settings, clients, now=now or dt.datetime.now(dt.timezone.utc), sleep=sleep,
               poll_seconds=poll_seconds)


def allow_student(clients: ClientFactory, course: str, student: str, policy: Policy, *,
                  now: dt.datetime | None = None) -> list[str]:
    """Lift a student's spend cap for the rest of the day (`labctl allow STUDENT`): mark each of their course
    machines `labkit:capped=allowed-<day>`, which the students' policy does not deny and the guard does not
    cap again that day; its next run after midnight removes the mark. Returns the machines marked."""
    day = (now or dt.datetime.now(dt.timezone.utc)).astimezone(policy.zone()).date().isoformat()
    value = [{"Key": TAG_CAPPED, "Value": f"{ALLOWED_PREFIX}{day}"}]
    ec2, sm = clients("ec2"), clients("sagemaker")
    filters = [{"Name": f"tag:{TAG_COURSE}", "Values": [course]}, {"Name": f"tag:{TAG_STUDENT}", "Values": [student]}]
    marked = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                if instance["State"]["Name"] in {"terminated", "shutting-down"}:
                    continue
                ec2.create_tags(Resources=[instance["InstanceId"]], Tags=value)
                marked.append(instance["InstanceId"])
    for page in sm.get_paginator("list_notebook_instances").paginate(NameContains=course):
        for notebook in page["NotebookInstances"]:
            tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=notebook["NotebookInstanceArn"])["Tags"]}
            if tags.get(TAG_COURSE) == course and tags.get(TAG_STUDENT) == student:
                sm.add_tags(ResourceArn=notebook["NotebookInstanceArn"], Tags=value)
                marked.append(notebook["NotebookInstanceName"])
    return marked
