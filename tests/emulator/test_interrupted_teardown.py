"""A teardown killed with SIGKILL at three points (during the archive, during stack deletion, after the last
stack) and run again: nothing lost, nothing left, and the guard never paused while a machine still runs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from course.config import LabConfig, to_toml
from lab_scripts import buckets
from labkit import ROOT
from labkit.deployed import running_machines
from labkit.emulator import Emulator, Endpoint
from labkit.ops.provision import prepare, provision
from labkit.ops.status import course_state
from labkit.ops.teardown import JOURNAL_ROOT
from labkit.target import Target, emulator_target
from tests.conftest import make_config

pytestmark = pytest.mark.emulator
COURSE = "kt101"
# labctl against this test's emulator, in a process of its own that can be killed like any other.
RUNNER = ("import os, sys\nfrom labkit import cli, emulator\n"
          "endpoint = emulator.Endpoint(int(os.environ['KT_PORT']), 'us-east-1')\n"
          "emulator.read_state = lambda *args, **kwargs: endpoint\nsys.exit(cli.main(sys.argv[1:]))\n")


@pytest.fixture
def fresh() -> Iterator[tuple[Endpoint, Target]]:
    with Emulator("us-east-1") as endpoint:
        running = emulator_target(endpoint)
        yield endpoint, dataclasses.replace(running, env={**running.env, "CDK_VALIDATION": "false"})
    (JOURNAL_ROOT / f"{COURSE}-teardown.json").unlink(missing_ok=True)


def teardown_until(endpoint: Endpoint, path: Path, trigger: str | None) -> tuple[int | None, list[str]]:
    """Run `labctl teardown`; SIGKILL its whole process group at the first line containing `trigger`."""
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER, "--config", str(path), "teardown", "--yes", "--confirm", COURSE],
        cwd=ROOT, env={**endpoint.child_env(), "KT_PORT": str(endpoint.port)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip())
        if trigger is not None and trigger in line:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return None, lines
    return process.wait(), lines


def test_teardown_killed_three_times_then_finished_loses_nothing_and_leaves_nothing(
        fresh: tuple[Endpoint, Target], tmp_path: Path) -> None:
    endpoint, target = fresh
    config: LabConfig = dataclasses.replace(make_config(course={"id": COURSE}),
                                            expires=dt.date.today() + dt.timedelta(days=30))
    path = tmp_path / "course.toml"
    path.write_text(to_toml(config))
    provision(config, path, target, prepare(config, path, target))
    s3 = target.clients("s3")
    written = {}
    for student in config.students:
        bucket = config.names.student(student).bucket
        for number in range(3):  # three versions of one file, and a file per version
            s3.put_object(Bucket=bucket, Key="work/model.py", Body=f"v{number}".encode())
            s3.put_object(Bucket=bucket, Key=f"runs//{number}/log.txt", Body=f"log {number}".encode())
            written[(bucket, f"runs//{number}/log.txt")] = f"log {number}".encode()
        written[(bucket, "work/model.py")] = b"v2"
    alice = config.names.student("alice").bucket
    held = [v for v in s3.list_object_versions(Bucket=alice).get("Versions", []) if v["Key"] == "work/model.py"]

    for trigger in ("archived", ": deleted", "deleting stacks:"):
        code, lines = teardown_until(endpoint, path, trigger)
        assert code is None, f"teardown finished before {trigger!r}:\n" + "\n".join(lines[-5:])
        rule = target.clients("events").describe_rule(Name=config.names.guard.schedule) if any(
            s["StackName"] == config.names.stack("LabGuard") for s in
            target.clients("cloudformation").describe_stacks()["Stacks"]) else {"State": "gone"}
        if rule["State"] == "DISABLED":
            assert running_machines(target, config) == ([], []), f"guard paused with machines running ({trigger})"
        problems = course_state(target, config).problems
        assert any("teardown started and did not finish" in problem for problem in problems), problems

    code, lines = teardown_until(endpoint, path, None)
    assert code == 0, "\n".join(lines[-10:])
    assert "0 resources left" in lines
    journal_gone = not (JOURNAL_ROOT / f"{COURSE}-teardown.json").exists()
    archive = Path(next(line for line in lines if line.startswith("archived ")).split(" to ", 1)[1].split(" (")[0])
    for (bucket, key), body in written.items():
        assert buckets.read_archived(archive / bucket / "manifest.json", key) == body, (bucket, key)
    versions = [entry for entry in json.loads((archive / alice / "manifest.json").read_text())["versions"]
                if entry["key"] == "work/model.py"]
    assert len(versions) == len(held)  # every version the bucket held survived, not only the latest
    assert journal_gone and course_state(target, config).problems == []
