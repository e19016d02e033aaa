"""A term in the life of a class, in one emulator with the real CDK CLI: provision 3 students, a late 4th joins
(only what changed deploys), one leaves, one gets a clean machine, the course ends, and the next term provisions
again in the same region."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from course.config import LabConfig, to_toml
from labkit import cli
from labkit.deployed import deployed_instances, deployed_notebooks, deployed_users
from labkit.emulator import Emulator, Endpoint
from labkit.events import Collect, StackStarted
from labkit.ops.provision import prepare, provision
from labkit.ops.students import student_bucket
from labkit.target import Target, emulator_target
from tests.conftest import make_config

pytestmark = pytest.mark.emulator
COURSE = "term1"


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Endpoint, Target]]:
    with Emulator("us-east-1") as endpoint:
        monkeypatch.setattr(cli.emulator, "read_state", lambda: endpoint)
        running = emulator_target(endpoint)
        yield endpoint, dataclasses.replace(running, env={**running.env, "CDK_VALIDATION": "false"})


def course_file(path: Path, students: list[str], start: str = "running") -> LabConfig:
    config = dataclasses.replace(make_config(course={"id": COURSE}, students=students, dlami={"start": start}),
                                 expires=dt.date.today() + dt.timedelta(days=30))
    path.write_text(to_toml(config))
    return config


def labctl(path: Path, *argv: str) -> int:
    return cli.main(["--config", str(path), *argv])


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def test_a_term_with_a_late_student_a_leaver_a_reset_and_a_second_run(
        fresh: tuple[Endpoint, Target], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, target = fresh
    path = tmp_path / "course.toml"
    config = course_file(path, ["alice", "bob", "chen"])
    first = prepare(config, path, target)
    assert first.added == ["alice", "bob", "chen"]
    provision(config, path, target, first)

    # A late student: the plan shows +1, and only the changed stacks deploy (a real CloudFormation update); the
    # class now starts GPU instances stopped, days before their lab.
    config = course_file(path, ["alice", "bob", "chen", "dave"], start="stopped")
    late = prepare(config, path, target)
    assert (late.added, late.removed) == (["dave"], [])
    assert sorted(late.to_deploy) == [f"{COURSE}-LabContainers", f"{COURSE}-LabDLAMI-dave",
                                      f"{COURSE}-LabSageMaker-dave"]
    events = Collect()
    provision(config, path, target, late, events)
    assert sorted(e.stack for e in events.of(StackStarted)) == sorted(late.to_deploy)  # type: ignore[attr-defined]
    for found in (deployed_notebooks, deployed_instances, deployed_users):
        assert "dave" in found(target, config), found.__name__
    described = target.clients("ec2").describe_instances(InstanceIds=[deployed_instances(target, config)["dave"]])
    assert described["Reservations"][0]["Instances"][0]["State"]["Name"] == "stopped"
    assert labctl(path, "handout", "dave", "--out", str(tmp_path / "handouts")) == 0
    assert (tmp_path / "handouts" / "dave.html").exists()

    # Work in the buckets, then a leaver: off the roster, destroyed on their own, archive verified, exit 0.
    s3 = target.clients("s3")
    work = {student: f"# {student}'s model\n".encode() for student in config.students}
    for student, body in work.items():
        s3.put_object(Bucket=student_bucket(target, config, student), Key="work/model.py", Body=body)
    config = course_file(path, ["alice", "chen", "dave"])
    assert prepare(config, path, target).removed == ["bob"]
    capsys.readouterr()
    assert labctl(path, "destroy", "--student", "bob", "--yes", "--archive", str(tmp_path / "bob")) == 0
    out = capsys.readouterr().out
    assert "0 resources left" in out
    assert not [name for name in target.clients("cloudformation").describe_stacks()["Stacks"]
                if name["StackName"].endswith("-bob")]

    # A reset: a clean machine, the same files (checked by SHA-256).
    # The notebook keeps its name (as in AWS), so a new one shows in a new creation time.
    sm = target.clients("sagemaker")
    name = deployed_notebooks(target, config)["chen"]
    created = sm.describe_notebook_instance(NotebookInstanceName=name)["CreationTime"]
    assert labctl(path, "reset", "chen", "--yes", "--archive", str(tmp_path / "chen")) == 0
    assert deployed_notebooks(target, config)["chen"] == name
    assert sm.describe_notebook_instance(NotebookInstanceName=name)["CreationTime"] > created
    body = s3.get_object(Bucket=student_bucket(target, config, "chen"), Key="work/model.py")["Body"].read()
    assert sha(body) == sha(work["chen"])

    # The course ends; the region is clean, so the next term provisions in it again, and ends again.
    assert labctl(path, "teardown", "--yes", "--confirm", COURSE, "--archive", str(tmp_path / "end")) == 0
    assert "0 resources left" in capsys.readouterr().out
    again = prepare(config, path, target)
    assert again.added == ["alice", "chen", "dave"]
    provision(config, path, target, again)
    assert labctl(path, "teardown", "--yes", "--confirm", COURSE, "--archive", str(tmp_path / "end2")) == 0
    assert "0 resources left" in capsys.readouterr().out
