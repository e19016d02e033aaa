"""Provision, teardown, provision again in one emulator: the class network's delete goes through the network
clean-up fallback, and leaves no export behind that would refuse the next deploy ("Export names must be unique").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from course.config import LabConfig
from lab_scripts.audit import audit_course
from labkit import jobs
from labkit.emulator import Emulator, Endpoint

pytestmark = pytest.mark.emulator
LAB = ["LabDLAMI"]  # the lab whose VPC moto cannot delete, and whose exports the students' stacks import


@pytest.fixture(scope="module")
def own_emulator() -> Iterator[Endpoint]:
    # Its own emulator: the class round trip expects a region with nothing but the CDK bootstrap stack.
    with Emulator("us-east-1") as running:
        yield running


def test_teardown_leaves_no_export_so_the_class_network_deploys_again(
    own_emulator: Endpoint, course: tuple[LabConfig, Path], tmp_path: Path
) -> None:
    config, path = course
    running = jobs.emulator_target(own_emulator)
    target = dataclasses.replace(running, env={**running.env, "CDK_VALIDATION": "false"})
    cfn = target.clients("cloudformation")
    quiet = {"echo": lambda line: None}

    jobs.deploy(config, path, target, LAB, **quiet)
    exported = {e["Name"] for e in cfn.list_exports()["Exports"] if e["Name"].startswith(config.course_id)}
    assert exported  # the class network's exports, imported by each student's GPU stack

    lines: list[str] = []
    result = jobs.destroy(config, path, target, LAB, archive_dir=tmp_path / "archive", echo=lines.append)
    assert any("cleaning 1 VPCs directly and retrying" in line for line in lines)  # the fallback ran
    assert result.audit.clean, result.audit.leftovers
    assert not {e["Name"] for e in cfn.list_exports()["Exports"] if e["Name"].startswith(config.course_id)}
    assert audit_course(target.clients, config.course_id, config.names.iam_path).clean

    jobs.deploy(config, path, target, LAB, synthesized=True, **quiet)  # refused before the fix
    statuses = {s["StackName"]: s["StackStatus"] for s in cfn.describe_stacks()["Stacks"]}
    assert statuses[config.names.stack("LabDLAMI")] == "CREATE_COMPLETE"
