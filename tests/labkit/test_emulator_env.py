"""The emulator's environment for child processes and for `eval "$(labctl local env)"`: no profile at all."""

from __future__ import annotations

import shlex

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
