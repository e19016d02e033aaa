"""The emulator process with the AWS timing model on: a notebook stack stays CREATE_IN_PROGRESS for its modelled
time (scaled), through the same flags a benchmark passes (`Emulator(region, timing=Timing(...))`)."""

from __future__ import annotations

import json
import time

import pytest

from labkit.emulator import Emulator
from labkit.emulator_timing import Timing, stack_seconds
from tests.labkit.test_emulator_timing import notebook_template

pytestmark = pytest.mark.emulator
SCALE = 0.005  # the 315 s of a notebook and its role take 1.6 s


def test_a_timed_emulator_keeps_a_notebook_stack_in_progress_for_its_scaled_time() -> None:
    with Emulator("us-east-1", timing=Timing(time_scale=SCALE)) as endpoint:
        cfn = endpoint.session().client("cloudformation")
        started = time.monotonic()
        cfn.create_stack(StackName="ml101-LabSageMaker-alice", TemplateBody=json.dumps(notebook_template()))
        seen = []
        while not seen or seen[-1] != "CREATE_COMPLETE":
            seen.append(cfn.describe_stacks(StackName="ml101-LabSageMaker-alice")["Stacks"][0]["StackStatus"])
            assert time.monotonic() - started < 30, seen[-1]
            time.sleep(0.05)
        took = time.monotonic() - started
    modelled = stack_seconds(notebook_template(), "create") * SCALE
    assert seen[0] == "CREATE_IN_PROGRESS" and modelled <= took < modelled + 5
