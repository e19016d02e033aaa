"""Shared fixtures: fake AWS credentials everywhere, a fixed clock, and the CDK app built once per session."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from moto import settings as moto_settings

ROOT = Path(__file__).resolve().parent.parent
# Parallel workers (pytest-xdist) synthesize into assemblies of their own; set before labkit.cdk is imported.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("LABKIT_ASSEMBLY", str(ROOT / ".labkit" / f"cdk.out-{os.environ['PYTEST_XDIST_WORKER']}"))

# One synthesis per distinct course for the whole run, shared by both workers (labkit/synth_cache.py): the emulator
# journeys run the CDK CLI about 80 times over a handful of courses. The controller names the folder before the
# workers start, so they inherit it; it goes at the end of the run.
if "PYTEST_XDIST_WORKER" not in os.environ:
    os.environ.setdefault("LABKIT_SYNTH_CACHE", tempfile.mkdtemp(prefix="labkit-synth-"))

# A deprecated aws-cdk-lib API used by the app fails the run instead of printing a warning into every learner's
# `cdk deploy` (jsii's own switch; the synthesis subprocesses of the CDK CLI journeys inherit it).
os.environ.setdefault("JSII_DEPRECATED", "fail")

# moto in-process otherwise loads its 1,300 public AMIs, each with a snapshot, into every fresh EC2 backend: about
# a third of the in-process tests' time (60 -> 43 CPU-s for tests/lab_scripts and tests/labkit). The tests register
# the images they launch (tests/lab_scripts/conftest.py). Patched here rather than set as MOTO_EC2_LOAD_DEFAULT_AMIS,
# which every emulator server started by a test would inherit: tests/emulator/test_local_up.py checks that the
# emulator turns them off itself (labkit/emulator_server.py).
moto_settings.ec2_load_default_amis = lambda: False

from course.config import LabConfig, parse_config  # noqa: E402 - after the assembly is chosen
TODAY = dt.date(2026, 11, 25)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ and "labkit-synth-" in os.environ.get("LABKIT_SYNTH_CACHE", ""):
        shutil.rmtree(os.environ["LABKIT_SYNTH_CACHE"], ignore_errors=True)


def course_raw(**sections: dict[str, Any]) -> dict[str, Any]:
    """A valid course file as a dict; keyword arguments override whole keys of each section."""
    raw: dict[str, Any] = {
        "students": ["alice", "bob"],
        "course": {
            "id": "ml101",
            "account": "123456789012",
            "region": "us-east-1",
            "expires": dt.date(2027, 1, 31),
            "budget_usd": 150,
        },
        "sagemaker": {"instance_type": "ml.t3.medium", "volume_gb": 10, "idle_minutes": 60},
        "containers": {"class_repository": True, "keep_images": 10},
    }
    for key, value in sections.items():
        if isinstance(raw.get(key), dict) and isinstance(value, dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return raw


def make_config(**sections: dict[str, Any]) -> LabConfig:
    return parse_config(course_raw(**sections), source="test.toml", today=TODAY)


OU = "ou-ab12-cdef3456"


def student_account(index: int) -> str:
    return f"{200000000000 + index:012d}"


def per_account_config(directory: Path, count: int, **sections: dict[str, Any]) -> LabConfig:
    """An account-per-student course of `count` students (s000, s001, ...) with their own accounts, from a roster
    written into `directory`: that mode reads the students' e-mail addresses from a roster."""
    roster = directory / f"roster-{count}.csv"
    roster.write_text("id,name,email,account\n" + "".join(
        f"s{index:03d},Student {index},s{index:03d}@example.edu,{student_account(index)}\n" for index in range(count)))
    classroom = {"mode": "account-per-student", "organizational_unit": OU, "roster": str(roster),
                 "max_concurrent_percentage": 20, "failure_tolerance_percentage": 5}
    raw = course_raw(classroom=classroom, **sections)
    del raw["students"]
    return parse_config(raw, source="test.toml", today=TODAY)


@pytest.fixture(autouse=True)
def fake_aws_env() -> Iterator[None]:
    """No test may reach a real account or a stray emulator: obvious test credentials, no endpoint override."""
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    with mock.patch.dict(os.environ, values):
        for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            os.environ.pop(key, None)
        yield


@pytest.fixture(scope="session", autouse=True)
def shared_service_models() -> Iterator[None]:
    """moto gives each test a fresh boto3 session, and each session parses botocore's service models (JSON,
    megabytes for EC2) again: about 20 s of the suite (README, "Performance"). One loader for all sessions parses each
    model once; botocore already shares a loaded model between the clients of one session in the same way."""
    import botocore.session

    with mock.patch.object(botocore.session, "create_loader", functools.cache(botocore.session.create_loader)):
        yield


@pytest.fixture(scope="session")
def config() -> LabConfig:
    return make_config()


def cdk_context() -> dict[str, Any]:
    """cdk.json's feature flags, so tests synthesize what the CLI synthesizes."""
    context = dict(json.loads((ROOT / "cdk.json").read_text())["context"])
    context["aws:cdk:bundling-stacks"] = []
    return context


def new_app(config: LabConfig, *, validation: bool = False) -> Any:
    """A CDK app as the CLI would build it (cdk.json flags), with CloudFormation validation off by default."""
    from aws_cdk import App

    from stacks import build_app

    return build_app(App(context=cdk_context(), builtin_cloud_formation_validation=validation), config, nag=False,
                     validation=validation)


@pytest.fixture(scope="session")
def app(config: LabConfig) -> Any:
    return new_app(config)


@pytest.fixture(scope="session")
def per_account_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app of a 3-student account-per-student course, built once per session."""
    return new_app(per_account_config(tmp_path_factory.mktemp("per-account"), 3))


@pytest.fixture(scope="session")
def templates(app: Any) -> dict[str, Any]:
    """Template assertions per construct id (the lab name), built once per session."""
    from aws_cdk import Stack
    from aws_cdk.assertions import Template

    return {child.node.id: Template.from_stack(child) for child in app.node.children if isinstance(child, Stack)}


def lab_template(templates: dict[str, Any], lab: str) -> Any:
    """One lab's class stack and students' stacks as one template, each resource's logical id prefixed with its
    stack's construct id (students' stacks repeat the same ids), so assertions can look at the whole lab."""
    from aws_cdk.assertions import Template

    merged: dict[str, dict[str, Any]] = {"Resources": {}, "Parameters": {}, "Outputs": {}}
    for construct_id, template in templates.items():
        if construct_id != lab and not construct_id.startswith(f"{lab}-"):
            continue
        body = template.to_json()
        for section in merged:
            prefix = "" if section == "Parameters" else construct_id.replace("-", "")
            merged[section].update({f"{prefix}{key}": value for key, value in body.get(section, {}).items()})
    return Template.from_json(merged)
