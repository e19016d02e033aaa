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

from lab_scripts.guard_fn.handler import Report, Settings, run

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
