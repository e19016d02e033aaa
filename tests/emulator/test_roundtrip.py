"""The whole class with the real CDK CLI in the embedded emulator: every lab deployed in one run, checked through
the services, used (container keys, image labels), guarded, torn down; nothing left, nothing lost. One deploy
and one teardown for all labs: each CDK CLI run costs seconds."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

import boto3

from lab_scripts import buckets, dlc, notebook, rekognition, sample_images
from lab_scripts.class_repository import layerless_manifest
from lab_scripts.guard import run_deployed_guard
from lab_scripts.inventory import EXISTS, SKIPPED
from labkit import cli
from course.config import LABS, LabConfig
from labkit.emulator import Endpoint
from labkit.deployed import lab_physical_ids
from labkit.events import Collect, StackFinished
from labkit.ops import stacks as stack_ops
from labkit.ops.stacks import deploy
from labkit.render import count
from labkit.target import Target

pytestmark = pytest.mark.emulator
STACK_KIND = "AWS::SageMaker::NotebookInstance"


def test_class_round_trip_with_the_guard_leaves_nothing_and_loses_nothing(
    target: Target, course: tuple[LabConfig, Path], tmp_path: Path, endpoint: Endpoint,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    config, path = course
    monkeypatch.setattr(cli.emulator, "read_state", lambda: endpoint)
    assert cli.main(["--config", str(path), "provision", "--dry-run", "--json"]) == 0
    planned = capsys.readouterr()
    assert "plan: 2 students (single-account)" in planned.err and "add: 2 alice, bob" in planned.err
    plan = json.loads(planned.out)  # stdout holds only the JSON plan, for scripts
    assert [row["stack_name"] for row in plan["stacks"]] == [unit.stack_name for unit in config.stacks()]
    assert plan["cost"]["saved_usd"] > 0 and {c["description"].split(" (")[0] for c in plan["capacity"]} >= {
        "CloudFormation stacks", "IAM users"}
    # The dry run bootstraps CDK and creates nothing of the course.
    assert {stack["StackName"] for stack in target.clients("cloudformation").describe_stacks()["Stacks"]} == {
        "CDKToolkit"}

    # Deployed from the assembly the dry run synthesized, as provision does after its plan.
    events = Collect()
    deployed = deploy(config, path, target, list(LABS), events, synthesized=True)
    # One notebook stack and one GPU stack per student, each class stack once: each reported done.
    finished = [event.stack for event in events.of(StackFinished)]
    assert sorted(finished) == sorted(unit.stack_name for unit in config.stacks())
    inventory, dlami_inventory = deployed["LabSageMaker"], deployed["LabDLAMI"]
    states = {(row.type, row.student): row.state for row in inventory + dlami_inventory}
    for student in config.students:
        assert states[("AWS::S3::Bucket", student)] == EXISTS
        assert states[(STACK_KIND, student)] == EXISTS
        assert states[("AWS::IAM::Role", student)] == EXISTS

    for student in config.students:
        assert states[("AWS::EC2::Instance", student)] == EXISTS
    instances = lab_physical_ids(target, config, "LabDLAMI", "AWS::EC2::Instance")
    described = target.clients("ec2").describe_instances(InstanceIds=[instances["alice"]])["Reservations"][0]
    tags = {t["Key"]: t["Value"] for t in described["Instances"][0]["Tags"]}
    assert tags["labkit:student"] == "alice" and tags["labkit:course"] == config.course_id
    vpcs = [row.physical_id for row in dlami_inventory if row.type == "AWS::EC2::VPC"]
    guard_rows = {row.type: row.state for row in deployed["LabGuard"]}
    for kind in ("AWS::Lambda::Function", "AWS::Events::Rule", "AWS::SNS::Topic", "AWS::KMS::Key",
                 "AWS::Logs::LogGroup", "AWS::Lambda::Permission"):
        assert guard_rows[kind] == EXISTS, kind
    assert guard_rows["AWS::Budgets::Budget"] == SKIPPED  # the emulator has no AWS::Budgets::Budget

    s3 = target.clients("s3")
    tags = s3.get_bucket_tagging(Bucket=config.names.student("bob").bucket)["TagSet"]
    assert {"Key": "labkit:student", "Value": "bob"} in tags
    s3.put_object(Bucket=config.names.student("alice").bucket, Key="work/model.py", Body=b"import torch\n")
    s3.put_object(Bucket=config.names.student("alice").bucket, Key="work/model.py", Body=b"import mxnet\n")

    image, key, outcome = label_an_image(target, config, deployed, tmp_path)
    students_use_their_container_keys(target, config, path, deployed, tmp_path, endpoint, monkeypatch, capsys)

    # labctl against the same emulator: status, then a teardown without --yes changes nothing.
    assert cli.main(["--config", str(path), "status", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["student"]: row["notebook_state"] for row in rows} == {"alice": "InService", "bob": "InService"}
    assert cli.main(["--config", str(path), "teardown"]) == 0
    assert "dry run: nothing changed" in capsys.readouterr().out
    assert len(lab_physical_ids(target, config, "LabSageMaker", STACK_KIND)) == 2

    # The guard's code, with the deployed function's environment (the emulator cannot run Lambda), two hours
    # after the deploy: as deployed (a course file without [guard] only reports), then acting.
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2, minutes=1)
    report = run_deployed_guard(target.clients, config.names.guard.function, now=later, poll_seconds=0)
    assert report.dry_run and len(report.of("dry run")) == 2
    assert {notebook.status(target.clients("sagemaker"), name).status for name in notebook_names(target, config)} == {
        "InService"}
    report = run_deployed_guard(target.clients, config.names.guard.function, now=later, dry_run=False, poll_seconds=0)
    assert sorted(action.target for action in report.of("done")) == notebook_names(target, config)
    again = run_deployed_guard(target.clients, config.names.guard.function, now=later, dry_run=False, poll_seconds=0)
    assert again.actions == []

    archive = tmp_path / "archive"
    keys_gone_before_stacks_are_deleted(target, config, monkeypatch)
    assert cli.main(["--config", str(path), "teardown", "--yes", "--confirm", config.course_id,
                     "--archive", str(archive)]) == 0
    out = capsys.readouterr().out
    users = {names.containers_user for names in map(config.names.student, config.students)}
    assert f"keys of {count(len(users), 'user')} deactivated, keys of {count(len(users), 'user')} deleted" in out
    assert f"ECR {config.names.class_repository}: deleted 1 image(s)" in out
    assert "0 resources left" in out and "ml101-guard-schedule: disabled" in out
    assert buckets.read_archived(archive / config.names.student("alice").bucket / "manifest.json",
                                 "work/model.py") == b"import mxnet\n"
    assert not target.clients("ec2").describe_vpcs(Filters=[{"Name": "vpc-id", "Values": vpcs}])["Vpcs"]
    summaries = target.clients("cloudformation").list_stacks()["StackSummaries"]
    statuses = {s["StackName"]: s["StackStatus"] for s in summaries}
    # A stack whose delete was retried after the VPC cleanup drops out of moto's list: absent counts as deleted.
    assert {statuses.get(unit.stack_name, "DELETE_COMPLETE") for unit in config.stacks()} == {"DELETE_COMPLETE"}
    assert statuses[config.names.stack("LabSageMaker", "alice")] == "DELETE_COMPLETE"
    labels_are_archived_and_gone(target, config, archive, image, key, outcome, out)


def notebook_names(target: Target, config: LabConfig) -> list[str]:
    return sorted(arn.rsplit("/", 1)[-1] for arn in lab_physical_ids(target, config, "LabSageMaker",
                                                                      STACK_KIND).values())


def students_use_their_container_keys(
    target: Target, config: LabConfig, path: Path, deployed: dict[str, Any], tmp_path: Path, endpoint: Endpoint,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """LabContainers: keys are issued to private files, and alice uses hers as the course tells her to: a profile,
    a registry login, a push to the class repository. No secret is ever printed."""
    states = {(row.type, row.student): row.state for row in deployed["LabContainers"]}
    assert {states[("AWS::IAM::User", student)] for student in config.students} == {EXISTS}
    assert states[("AWS::ECR::Repository", "-")] == EXISTS
    assert states[("AWS::IAM::Group", "-")] == SKIPPED  # the emulator has no AWS::IAM::Group
    keys = tmp_path / "keys"
    assert cli.main(["--config", str(path), "keys", "issue", "nobody"]) == 2
    assert cli.main(["--config", str(path), "keys", "issue", "--out", str(keys)]) == 0
    printed = capsys.readouterr()

    with monkeypatch.context() as student_shell:
        student_shell.setenv("AWS_SHARED_CREDENTIALS_FILE", str(keys / "alice.credentials"))
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            student_shell.delenv(variable)
        student = boto3.Session(profile_name=config.course_id, region_name=config.region)
        secret = student.get_credentials().secret_key
        assert secret not in printed.out + printed.err
        ecr: Any = student.client("ecr", endpoint_url=endpoint.url)
        assert dlc.main(["login", "--region", config.region], client=ecr) == 0
    assert "--password-stdin 763104351884.dkr.ecr.us-east-1.amazonaws.com" in capsys.readouterr().out
    ecr.put_image(repositoryName=config.names.class_repository, imageTag="alice-lab1",
                  imageManifest=layerless_manifest("alice"))


def keys_gone_before_stacks_are_deleted(target: Target, config: LabConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS refuses to delete a user with access keys; the emulator does not, so the teardown is checked here."""
    iam = target.clients("iam")
    users = [config.names.student(student).containers_user for student in config.students]
    real_run_cdk = stack_ops.run_cdk

    def checked(args: list[str], **kwargs: Any) -> None:
        if args[0] == "destroy":
            existing = {user["UserName"] for user in iam.list_users()["Users"]}  # a retried destroy: some are gone
            for user in set(users) & existing:
                assert iam.list_access_keys(UserName=user)["AccessKeyMetadata"] == []
        real_run_cdk(args, **kwargs)

    monkeypatch.setattr(stack_ops, "run_cdk", checked)


def label_an_image(target: Target, config: LabConfig, deployed: dict[str, Any], tmp_path: Path
                   ) -> tuple[Path, str, Any]:
    """LabRekognition: the upload is labelled by the deployed function's code (run in-process: the emulator cannot
    run Lambda and ignores the trigger, which the inventory says), and a failed event waits in the queue."""
    names = config.names.rekognition
    rows = {row.type: row for row in deployed["LabRekognition"]}
    for kind in ("AWS::S3::Bucket", "AWS::Lambda::Function", "AWS::Lambda::Permission", "AWS::SQS::Queue",
                 "AWS::Logs::LogGroup", "AWS::IAM::Role"):
        assert rows[kind].state == EXISTS, rows[kind]
    assert "NotificationConfiguration" in rows["AWS::S3::Bucket"].ignored

    s3 = target.clients("s3")
    image = tmp_path / "cat photo.png"
    image.write_bytes(sample_images.png(32, 32))
    key, etag, size = rekognition.upload(s3, names.bucket, image)
    event = rekognition.s3_put_event(names.bucket, key, etag, size)
    outcome, = rekognition.run_deployed_handler(target.clients, names.function, event, features=("labels", "text"))
    assert outcome.status == "written"
    assert rekognition.wait_for_result(s3, names.bucket, outcome.result_key, timeout=5)["labels"]
    target.clients("sqs").send_message(QueueUrl=rows["AWS::SQS::Queue"].physical_id, MessageBody="{}")
    return image, key, outcome


def labels_are_archived_and_gone(target: Target, config: LabConfig, archive: Path, image: Path, key: str,
                                 outcome: Any, out: str) -> None:
    names = config.names.rekognition
    assert f"{names.dead_letter_queue}: 1 failed events are deleted with the queue" in out
    archived = archive / names.bucket / "manifest.json"
    assert buckets.read_archived(archived, key) == image.read_bytes()
    assert json.loads(buckets.read_archived(archived, outcome.result_key))["source"]["key"] == key
    assert target.clients("logs").describe_log_groups(logGroupNamePrefix=names.log_group)["logGroups"] == []
    assert target.clients("lambda").list_functions()["Functions"] == []
    assert not target.clients("sqs").list_queues().get("QueueUrls")
    assert names.bucket not in {b["Name"] for b in target.clients("s3").list_buckets()["Buckets"]}


def test_bad_course_file_creates_nothing(
    target: Target, endpoint: Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], course: tuple[LabConfig, Path],
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(course[1].read_text().replace('instance_type = "ml.t3.medium"', 'instance_type = "ml.t3.huge"'))
    monkeypatch.setattr(cli.emulator, "read_state", lambda: endpoint)
    assert cli.main(["--config", str(bad), "deploy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sagemaker.instance_type: 'ml.t3.huge'" in err
    live = [s for s in target.clients("cloudformation").list_stacks()["StackSummaries"]
            if s["StackStatus"] != "DELETE_COMPLETE"]
    assert [s["StackName"] for s in live] == ["CDKToolkit"] or not live


def test_notebook_commands_need_a_running_emulator(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   course: tuple[LabConfig, Path]) -> None:
    monkeypatch.setattr(cli.emulator, "read_state", lambda: None)
    assert cli.main(["--config", str(course[1]), "notebook", "stop", "alice"]) == 2
    assert "no emulator running" in capsys.readouterr().err


def test_detached_emulator_up_env_down(tmp_path: Path) -> None:
    from labkit import emulator

    state = tmp_path / "emulator.json"
    endpoint = emulator.start_detached("us-east-1", state_file=state)
    try:
        assert emulator.read_state(state) == endpoint
        with pytest.raises(RuntimeError, match="already running"):
            emulator.start_detached("us-east-1", state_file=state)
        buckets: Any = endpoint.session().client("s3").list_buckets()
        assert buckets["Buckets"] == []
    finally:
        assert emulator.stop_detached(state)
    assert emulator.read_state(state) is None
