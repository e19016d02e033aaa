"""`labctl teardown`, `stop-all`, `guard run` and `audit` against moto; what destroy does with what the guard kept."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from lab_scripts import buckets, preserve, prices
from lab_scripts.guard_fn.handler import Policy, Settings
from labkit.events import describe
from labkit import ROOT, cli
from course.config import GUARDED_LABS, LabConfig
from labkit.deployed import running_machines
from labkit.ops.teardown import DestroyResult, Drain, _remove_retained
from labkit.target import Target
from tests.lab_scripts.conftest import create_lab_stack, launchable_image
from tests.lab_scripts.test_preserve import gpu_instance

COURSE_TAG = [{"Key": "labkit:course", "Value": "ml101"}]


@pytest.fixture
def deployed(target: Target, templates: dict[str, Template], emulator_tags: None) -> Target:
    """LabSageMaker as the CDK CLI deploys it: stack tags, and (as in AWS) the template's tags on each notebook."""
    for student in ("alice", "bob"):
        create_lab_stack(target.clients, f"ml101-LabSageMaker-{student}",
                         templates[f"LabSageMaker-{student}"].to_json(), tags=COURSE_TAG)
    return target


def labctl(path: Path, *argv: str) -> int:
    return cli.main(["--config", str(path), *argv])


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def notebook_states(target: Target) -> set[str]:
    notebooks = target.clients("sagemaker").list_notebook_instances()["NotebookInstances"]
    return {notebook["NotebookInstanceStatus"] for notebook in notebooks}


def test_teardown_is_a_dry_run_by_default(deployed: Target, course: tuple[LabConfig, Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert labctl(course[1], "teardown") == 0
    out = capsys.readouterr().out
    assert "ml101-LabSageMaker-alice: delete (1 NotebookInstance, 1 Bucket)" in out
    assert "ml101-LabSageMaker-bob: delete (1 NotebookInstance, 1 Bucket)" in out
    assert "ml101-LabGuard: not deployed" in out
    assert "dry run: nothing changed (to do it: --yes, then type ml101; or --yes --confirm ml101)" in out
    assert notebook_states(deployed) == {"InService"}


def plan_steps(out: str) -> list[str]:
    """The numbered steps of a printed plan, each on one line again (the console wraps long ones)."""
    text = " ".join(out.split())
    return [step.strip() for step in re.split(r" ?\b\d\. ", text.split("┘", 1)[1].split(" dry run:")[0])[1:]]


def test_the_plan_lists_only_what_the_stacks_hold_and_the_gpu_homes_it_keeps_with_their_cost(
        target: Target, course: tuple[LabConfig, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # With an archive, teardown keeps each student's GPU volume as a snapshot (billed until deleted): the plan says
    # so. A step is listed only when the stacks hold what it acts on: one student's destroy pauses no guard.
    gpu = {"Resources": {"Gpu": {"Type": "AWS::EC2::Instance", "Properties": {
        "ImageId": launchable_image(target.clients("ec2")), "InstanceType": "g4dn.xlarge"}}}}
    for student in ("alice", "bob"):
        create_lab_stack(target.clients, f"ml101-LabDLAMI-{student}", gpu, tags=COURSE_TAG)
    create_lab_stack(target.clients, "ml101-LabGuard", {"Resources": {"Schedule": {"Type": "AWS::Events::Rule",
                     "Properties": {"ScheduleExpression": "rate(5 minutes)"}}}}, tags=COURSE_TAG)
    create_lab_stack(target.clients, "ml101-LabContainers", {"Resources": {
        "User": {"Type": "AWS::IAM::User", "Properties": {"UserName": "ml101-alice-dlc"}},
        "Repository": {"Type": "AWS::ECR::Repository", "Properties": {"RepositoryName": "ml101-class"}}}},
        tags=COURSE_TAG)
    archive = f"archive every version of every object of each lab bucket to {ROOT}/.labkit/archive/"
    assert labctl(course[1], "teardown") == 0
    out = capsys.readouterr().out
    assert "ml101-LabDLAMI-alice: delete (1 Instance)" in " ".join(out.split())
    steps = plan_steps(out)
    assert steps[:2] == ["stop every notebook and GPU instance, deactivate the students' access keys (nothing writes "
                         "after this)", "pause the guard"]
    assert steps[2].startswith(archive)
    assert steps[3:] == [
        "delete access keys and class repository images; keep each student's GPU volume as a snapshot (2, at most "
        "200 GB: 10.00 USD/month until `labctl preserved delete`), then terminate the GPU instances",
        "delete the stacks (students' first) and the notebooks' log streams, then audit for leftovers (exit 1 if any)"]

    assert labctl(course[1], "teardown", "--no-archive") == 0
    steps = plan_steps(capsys.readouterr().out)
    assert steps[2:4] == ["empty every lab bucket WITHOUT archive (--no-archive)", "delete access keys and class "
                          "repository images; terminate GPU instances (their volumes go with them)"]

    assert labctl(course[1], "destroy", "--student", "alice") == 0
    steps = plan_steps(capsys.readouterr().out)
    assert steps[0] == "stop every notebook and GPU instance (nothing writes after this)"
    assert steps[1].startswith(archive)
    assert steps[2] == ("keep each student's GPU volume as a snapshot (1, at most 100 GB: 5.00 USD/month until `labctl "
                        "preserved delete`), then terminate the GPU instances")


@pytest.mark.parametrize(("argv", "message"), [
    (["--yes"], "labctl: error: --yes needs --confirm ml101 when there is no terminal to type it in; nothing changed"),
    (["--yes", "--confirm", "ml102"], "labctl: error: --confirm 'ml102' is not this course's id ('ml101' in"),
    (["--confirm", "ML101"], "labctl: error: --confirm 'ML101' is not this course's id"),
])
def test_teardown_refuses_without_the_course_id(deployed: Target, course: tuple[LabConfig, Path], argv: list[str],
                                                message: str, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.sys, "stdin", io.StringIO(""))  # no terminal, as in CI
    assert labctl(course[1], "teardown", *argv) == 2
    assert one_line_error(capsys).startswith(message)
    assert notebook_states(deployed) == {"InService"}


def test_teardown_asks_for_the_course_id_at_a_terminal(deployed: Target, course: tuple[LabConfig, Path],
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    ran: list[Path | None] = []
    monkeypatch.setattr(cli, "teardown", lambda config, path, target, archive, view: ran.append(archive) or DestroyResult())
    monkeypatch.setattr(cli.sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: "ml100")
    assert labctl(course[1], "teardown", "--yes") == 2
    assert "typed 'ml100', not 'ml101'; nothing changed" in one_line_error(capsys)
    monkeypatch.setattr("builtins.input", lambda prompt: "ml101")
    assert labctl(course[1], "teardown", "--yes", "--no-archive") == 0
    assert ran == [None]


def tagged_bucket(target: Target, name: str, tags: list[dict[str, str]] | None = COURSE_TAG) -> None:
    s3 = target.clients("s3")
    s3.create_bucket(Bucket=name)
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
    s3.put_object(Bucket=name, Key="notebooks/lab1.ipynb", Body=b"{}")


def test_destroy_archives_and_removes_what_the_guard_kept(target: Target, course: tuple[LabConfig, Path],
                                                          tmp_path: Path) -> None:
    config, _ = course
    kept = config.names.student("alice").bucket
    tagged_bucket(target, kept)
    tagged_bucket(target, config.names.student("bob").bucket, tags=None)  # same name, not the course's: untouched
    iam = target.clients("iam")
    iam.create_user(UserName="ml101-alice-dlc", Path=config.names.iam_path, Tags=COURSE_TAG)
    iam.create_access_key(UserName="ml101-alice-dlc")
    lines: list[str] = []
    result = DestroyResult()
    _remove_retained(Drain(target, tmp_path, lambda event: lines.append(describe(event)), result), config)
    assert result.retained == [kept, "ml101-alice-dlc"]
    assert buckets.read_archived(tmp_path / kept / "manifest.json", "notebooks/lab1.ipynb") == b"{}"
    names = {bucket["Name"] for bucket in target.clients("s3").list_buckets()["Buckets"]}
    assert names == {config.names.student("bob").bucket}
    assert iam.list_users(PathPrefix=config.names.iam_path)["Users"] == []
    # The retained user's key is frozen before the retained bucket is archived.
    assert lines[:2] == ["ml101-alice-dlc: deactivated 1 access key(s)", f"s3://{kept}: kept when its stack was deleted"]


def test_stop_all_stops_the_course_and_only_the_course(deployed: Target, course: tuple[LabConfig, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    ec2 = deployed.clients("ec2")
    spec = [{"ResourceType": "instance", "Tags": COURSE_TAG}]
    ours = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=spec)
    other = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
    ours_id, other_id = ours["Instances"][0]["InstanceId"], other["Instances"][0]["InstanceId"]
    assert running_machines(deployed, course[0])[1] == [ours_id]
    assert labctl(course[1], "stop-all") == 0
    out = capsys.readouterr().out
    assert f"instance {ours_id}: stopped" in out and out.count(": Stopped") == 2
    assert notebook_states(deployed) == {"Stopped"}
    states = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances()["Reservations"]
              for i in r["Instances"]}
    assert states == {ours_id: "stopped", other_id: "running"}
    assert labctl(course[1], "stop-all") == 0
    assert "nothing of the course is running" in capsys.readouterr().out


def deploy_guard_function(target: Target, config: LabConfig) -> None:
    """What LabGuard deploys, as far as `labctl guard run` needs it: the function and its environment."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("handler.py", "")
    role = target.clients("iam").create_role(RoleName="ml101-guard", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    settings = Settings(course=config.course_id, expires=config.expires, iam_path=config.names.iam_path,
                        stacks=tuple(config.names.stack(lab) for lab in GUARDED_LABS),
                        topic_arn=target.clients("sns").create_topic(Name="ml101-guard-reports")["TopicArn"],
                        teardown_role_arn="none", policy=Policy(dry_run=False, idle_minutes=15))
    target.clients("lambda").create_function(
        FunctionName=config.names.guard.function, Runtime="python3.12", Role=role, Handler="handler.lambda_handler",
        Code={"ZipFile": archive.getvalue()}, Environment={"Variables": settings.to_env()})


def test_guard_run_previews_the_course_end(deployed: Target, course: tuple[LabConfig, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config, path = course
    assert labctl(path, "guard", "run") == 2
    assert one_line_error(capsys) == "labctl: error: LabGuard is not deployed: no function ml101-guard " \
                                     "(`labctl provision` deploys it)\n"
    deploy_guard_function(deployed, config)
    day_after = (config.expires.toordinal() + 1)
    at = f"{type(config.expires).fromordinal(day_after).isoformat()}T09:00"
    assert labctl(path, "guard", "run", "--dry-run", "--at", at) == 0
    out = capsys.readouterr().out
    assert "labkit ml101 guard (dry run): 4 dry run" in out  # two notebooks and the students' two stacks
    assert "- dry run: delete stack ml101-LabSageMaker-alice: the course ended on" in out
    assert notebook_states(deployed) == {"InService"}
    assert labctl(path, "guard", "run", "--at", "next monday") == 2
    assert "--at 'next monday' is not a date and time" in one_line_error(capsys)


def test_audit_prices_billable_leftovers_and_exits_1(deployed: Target, course: tuple[LabConfig, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert labctl(course[1], "audit") == 1
    out = capsys.readouterr().out
    # Two running ml.t3.medium; moto ignores VolumeSizeInGB and reports its 5 GB default.
    expected = 2 * prices.notebook_per_hour("ml.t3.medium", "InService", 5)
    assert f"2 billable: about {expected:.4f} USD/hour" in out and "USD/hour" in out


def test_audit_of_an_empty_account_exits_0(target: Target, course: tuple[LabConfig, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert labctl(course[1], "audit") == 0
    assert "0 resources left" in capsys.readouterr().out


def test_guard_settings_in_the_deployed_template_read_back(templates: dict[str, Template]) -> None:
    """The stack renders the Settings the function reads: the plain values survive the round trip."""
    function = next(r for r in templates["LabGuard"].to_json()["Resources"].values()
                    if r["Type"] == "AWS::Lambda::Function")
    env = {k: (v if isinstance(v, str) else "token") for k, v in function["Properties"]["Environment"]["Variables"]
           .items()}
    assert Settings.from_env(env).stacks == tuple(f"ml101-{lab}" for lab in GUARDED_LABS)
    assert json.dumps(env).count("token") == 2  # the topic and the teardown role come from the stack


def test_preserved_list_shows_the_kept_homes_and_their_monthly_cost_or_says_there_are_none(
        target: Target, course: tuple[LabConfig, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert labctl(course[1], "preserved", "list") == 0
    assert capsys.readouterr().out.startswith("ml101: no GPU homes kept as snapshots")
    ec2 = target.clients("ec2")
    instances = {gpu_instance(target.clients, student): student for student in ("alice", "bob")}
    preserve.preserve_homes(ec2, instances, course="ml101", delay=0)
    assert labctl(course[1], "preserved", "list") == 0
    out = capsys.readouterr().out
    size = sum(r.size_gb for r in preserve.list_preserved(ec2, "ml101"))
    assert "alice" in out and "bob" in out
    assert f"2 snapshots, {size} GB: at most {size * prices.SNAPSHOT_GB_MONTH:.2f} USD/month until `labctl preserved " \
           "delete`" in " ".join(out.split())
