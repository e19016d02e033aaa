"""The emulator's environment for child processes and for `eval "$(labctl local env)"`: no profile at all, and
no usage reports from the CDK CLI about runs that never reach AWS."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from labkit.cdk import cdk_executable
from labkit.emulator import UNSET, Endpoint

ENDPOINT = Endpoint(4566, "us-east-1")


def test_the_environment_sets_no_profile_because_an_empty_one_breaks_boto3_and_the_aws_cli() -> None:
    env = ENDPOINT.env()
    assert "AWS_PROFILE" not in env and env["AWS_ENDPOINT_URL"] == "http://localhost:4566"
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_REGION"] == "us-east-1"


def test_a_child_environment_drops_the_callers_profile() -> None:
    child = ENDPOINT.child_env({"AWS_PROFILE": "teaching", "AWS_DEFAULT_PROFILE": "", "HOME": "/home/me"})
    assert not set(UNSET) & set(child) and child["HOME"] == "/home/me"
    assert child["AWS_ENDPOINT_URL"] == ENDPOINT.url


def test_shell_lines_unset_the_profile_then_export_quoted_values() -> None:
    lines = ENDPOINT.shell_lines()
    assert lines[:2] == ["unset AWS_PROFILE", "unset AWS_DEFAULT_PROFILE"]
    exported = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in lines[2:])
    assert exported == ENDPOINT.env()


def _telemetry_lines(env: dict[str, str], cwd: Path) -> list[str]:
    """The CLI's own trace of its usage report for one `cdk synth` (it decides before running the app)."""
    done = subprocess.run([str(cdk_executable()), "synth", "--app", "true", "-vvv", "--no-notices"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)
    return [line.split("] ", 1)[1] for line in done.stderr.splitlines() if "] Telemetry " in line]


def test_the_cdk_cli_sends_no_usage_report_from_an_emulator_session(tmp_path: Path) -> None:
    # Without the emulator's setting the CLI spawns a sender (pointed at a closed local port here, not at AWS).
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    assert _telemetry_lines({**base, "TELEMETRY_ENDPOINT": "http://localhost:9/metrics"}, tmp_path)[0] == \
        "Telemetry sink registered"
    assert _telemetry_lines(ENDPOINT.child_env(base), tmp_path) == ["Telemetry disabled"]
