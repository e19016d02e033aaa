"""LabContainers in the embedded emulator: deploy, issue keys, log in and push as a student, destroy, prove empty."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from lab_scripts import dlc
from lab_scripts.class_repository import layerless_manifest
from lab_scripts.inventory import EXISTS, SKIPPED
from labkit import cli, jobs
from labkit.config import LabConfig
from labkit.emulator import Endpoint
from labkit.jobs import Target, deploy, destroy

pytestmark = pytest.mark.emulator
LAB = "LabContainers"


def test_destroy_succeeds_with_issued_keys_and_leaves_nothing(
    target: Target, course: tuple[LabConfig, Path], tmp_path: Path, endpoint: Endpoint,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    config, path = course
    names = config.names
    users = {student: names.student(student).containers_user for student in config.students}

    inventory = deploy(config, path, target, [LAB], echo=lambda line: None)[LAB]
    states = {(row.type, row.student): row.state for row in inventory}
    assert {states[("AWS::IAM::User", student)] for student in config.students} == {EXISTS}
    assert states[("AWS::ECR::Repository", "-")] == EXISTS
    assert states[("AWS::IAM::Group", "-")] == SKIPPED  # the emulator has no AWS::IAM::Group

    monkeypatch.setattr(cli.emulator, "read_state", lambda: endpoint)
    keys = tmp_path / "keys"
    assert cli.main(["--config", str(path), "keys", "issue", "nobody"]) == 2
    assert cli.main(["--config", str(path), "keys", "issue", "--out", str(keys)]) == 0
    printed = capsys.readouterr()

    # alice uses her file as the course tells her to: a profile, a registry login, a push to the class repository.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(keys / "alice.credentials"))
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable)
    student = boto3.Session(profile_name=config.course_id, region_name=config.region)
    secret = student.get_credentials().secret_key
    assert secret not in printed.out + printed.err
    ecr: Any = student.client("ecr", endpoint_url=endpoint.url)
    assert dlc.main(["login", "--region", config.region], client=ecr) == 0
    assert "--password-stdin 763104351884.dkr.ecr.us-east-1.amazonaws.com" in capsys.readouterr().out
    ecr.put_image(repositoryName=names.class_repository, imageTag="alice-lab1",
                  imageManifest=layerless_manifest("alice"))

    iam = target.clients("iam")
    real_run_cdk = jobs.run_cdk

    def keys_gone_before_delete(args: list[str], **kwargs: Any) -> None:
        # AWS refuses to delete a user with access keys; the emulator does not, so check it here.
        if args[0] == "destroy":
            for user in users.values():
                assert iam.list_access_keys(UserName=user)["AccessKeyMetadata"] == []
        real_run_cdk(args, **kwargs)

    monkeypatch.setattr(jobs, "run_cdk", keys_gone_before_delete)
    lines: list[str] = []
    result = destroy(config, path, target, [LAB], archive_dir=None, echo=lines.append)
    assert result.audit.clean, result.audit.leftovers
    assert {line.split(":")[0] for line in lines if "access key" in line} == set(users.values())
    assert f"ECR {names.class_repository}: deleted 1 image(s)" in lines
    stacks = target.clients("cloudformation").list_stacks()["StackSummaries"]
    assert {s["StackName"]: s["StackStatus"] for s in stacks}[names.stack(LAB)] == "DELETE_COMPLETE"
