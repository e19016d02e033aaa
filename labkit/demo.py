"""`labctl demo`, the main job: a fresh embedded emulator, the sample roster provisioned, used, guarded, stopped,
torn down and audited, with the same code paths as the commands an instructor runs."""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import datetime as dt
import hashlib
import json
import tempfile
import time
from pathlib import Path

import boto3
from rich.text import Text

from course.config import LabConfig, load_config, to_toml
from lab_scripts import class_repository, dlc, rekognition, sample_images
from lab_scripts.buckets import ArchiveError
from lab_scripts.guard_fn.handler import STOP_NOTEBOOK, Report
from labkit import ROOT, emulator
from labkit.ops import guard as guard_ops
from labkit.ops import handouts as handout_ops
from labkit.ops import machines, status as status_ops
from labkit.ops.errors import RefusedError
from labkit.ops.provision import prepare, provision
from labkit.ops.teardown import archive_dir_for, teardown, teardown_plan
from labkit.render import LiveView, console, line, print_audit, print_guard_report, print_plan, print_status, \
    print_teardown_plan
from labkit.target import Target, emulator_target

DEMO_COURSE_DAYS = 7

STUDENT_WORK = {
    "notebooks/lab1-mnist.ipynb": json.dumps({"cells": [{"cell_type": "code", "source": "model.fit(x, y)"}]}),
    "results/accuracy.csv": "epoch,accuracy\n1,0.91\n2,0.95\n",
}


# Named like students' files: a space (URL-encoded in S3 events) and an upper-case suffix (a camera's).
DEMO_IMAGES = {"class photo 1.JPG": sample_images.jpeg(128, 96), "whiteboard.png": sample_images.png(96, 64)}
# The Rekognition APIs moto implements; DetectModerationLabels and DetectFaces answer 500 there.
EMULATOR_FEATURES = ("labels", "text")


def demo_image_labels(target: Target, config: LabConfig, workdir: Path) -> dict[str, str]:
    """Upload images, run the labelling handler in-process, show the results; returns bucket/key -> SHA-256."""
    names = config.names.rekognition
    s3 = target.clients("s3")
    console.print(Text(
        "The emulator cannot run Lambda and ignores the bucket's trigger, so each upload's S3 event is built here "
        "and the function's handler runs in-process with its deployed environment. The emulator's Rekognition is "
        "canned: it returns the same labels for every image.", style="yellow"))
    skipped = [name for name in config.rekognition.features if name not in EMULATOR_FEATURES]
    if skipped:
        console.print(line(("The emulator does not implement these features; they are left out here: ", "yellow"),
                           ", ".join(skipped)))
    shown = ""
    for name, data in DEMO_IMAGES.items():
        path = workdir / name
        path.write_bytes(data)
        key, etag, size = rekognition.upload(s3, names.bucket, path)
        event = rekognition.s3_put_event(names.bucket, key, etag, size)
        outcome, = rekognition.run_deployed_handler(target.clients, names.function, event, features=EMULATOR_FEATURES)
        result = rekognition.wait_for_result(s3, names.bucket, outcome.result_key, timeout=10)
        console.print(Text(f"s3://{names.bucket}/{key} -> {outcome.status} {outcome.result_key} (canned labels):"))
        labels = rekognition.format_table(result)
        console.print(Text(labels if labels != shown else "(the same canned labels)"))
        shown = labels
        again, = rekognition.run_deployed_handler(target.clients, names.function, event, features=EMULATOR_FEATURES)
        console.print(Text(f"same event delivered again -> {again.status}: {again.detail}"))
    return {
        f"{names.bucket}/{obj['Key']}": hashlib.sha256(
            s3.get_object(Bucket=names.bucket, Key=obj["Key"])["Body"].read()).hexdigest()
        for obj in s3.list_objects_v2(Bucket=names.bucket).get("Contents", [])
    }
def demo_guard(target: Target, config: LabConfig) -> Report:
    """Run the guard's handler in-process, its clock set just past the idle limit after the deploy."""
    idle = config.guard.policy.idle_minutes
    at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=idle + 1)
    console.print(Text(
        "The emulator cannot run Lambda and its EventBridge schedules do not fire, so the guard's handler runs "
        f"in-process with its deployed environment, its clock set to {at:%H:%M} UTC ({idle + 1} min from now): "
        "nobody has used the notebooks since the deploy.", style="yellow"))
    report = guard_ops.guard_run(target, config, now=at)
    print_guard_report(report)
    stopped = [action.target for action in report.of("done") if action.kind == STOP_NOTEBOOK]
    console.print(Text(f"the guard stopped {len(stopped)} idle notebook(s); the GPU instances have no CPU metrics in "
                       "the emulator, so the guard cannot call them idle and leaves them to stop-all"))
    return report


def _demo_containers(target: Target, endpoint: emulator.Endpoint, config: LabConfig, handouts: Path) -> None:
    """The first student uses the credentials file of their handout, as the course tells them to: a registry
    login for Deep Learning Containers and a push to the class repository."""
    student = config.students[0]
    credentials = configparser.ConfigParser()
    credentials.read(handouts / f"{student}.credentials")
    profile = credentials[config.course_id]
    ecr = boto3.Session(aws_access_key_id=profile["aws_access_key_id"],
                        aws_secret_access_key=profile["aws_secret_access_key"],
                        region_name=config.region).client("ecr", endpoint_url=endpoint.url)
    console.print(Text(f"{student}$ {dlc.login_command(ecr, config.region)}"))
    if config.containers.class_repository:
        # What `docker push` leaves in the student's own repository, so destroy has images to remove.
        ecr.put_image(repositoryName=class_repository.repository_name(config.names, student), imageTag="lab1",
                      imageManifest=class_repository.layerless_manifest(student))
        console.print(Text(f"{student}: pushed {class_repository.repository_uri(config.names, student)}:lab1"))
    image = dlc.find_image("pytorch", device="gpu")
    console.print(Text(f"{student}$ {dlc.run_command(image, config.region)}"))
    if image.note:
        console.print(Text(f"note: {image.note}"))


def refuse_other_account(config: LabConfig, source: str) -> None:
    """The demos deploy only into the emulator's account: a course file for a real account is a mistake here."""
    if config.account != emulator.EMULATOR_ACCOUNT:
        raise RefusedError(f"the demo runs in the embedded emulator, account {emulator.EMULATOR_ACCOUNT}; "
                           f"{source} names {config.account}")


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: deploy into a fresh emulator, show it, stop, destroy with archive, prove nothing is left."""
    started = time.monotonic()
    # The demo course lives only in a throwaway emulator, so it gets a fresh expiry date and the demo keeps
    # working whatever date lab.toml names.
    source = load_config(args.config, allow_expired=True)
    config = dataclasses.replace(source, expires=dt.date.today() + dt.timedelta(days=DEMO_COURSE_DAYS))
    demo_config = ROOT / ".labkit" / "demo-course.toml"
    demo_config.parent.mkdir(parents=True, exist_ok=True)
    demo_config.write_text(to_toml(config))
    console.print(Text(f"demo course '{config.course_id}' from {args.config}, expiring {config.expires} in the "
                       "emulator"))
    refuse_other_account(config, args.config)
    view = LiveView("demo", verbose=getattr(args, "verbose", False))
    with emulator.Emulator(config.region) as endpoint, view:
        target = emulator_target(endpoint)
        console.rule(f"1/7 labctl provision: {len(config.students)} students into the {target.label}")
        plan = prepare(config, demo_config, target, view)
        print_plan(config, plan)
        provision(config, demo_config, target, plan, view)

        console.rule("2/7 labctl handout, then students work: files in their buckets, a container registry login")
        s3 = target.clients("s3")
        written: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="labkit-demo-handouts-") as handout_dir:
            for handout in handout_ops.handouts(target, config, list(config.students), Path(handout_dir)):
                mode = handout.path.stat().st_mode & 0o777
                console.print(Text(f"{handout.student}: {handout.path.name} and {handout.html.name} (mode {mode:o}); "
                                   f"credentials: {handout.credentials}"))
            for student in config.students:
                names = config.names.student(student)
                for key, body in STUDENT_WORK.items():
                    s3.put_object(Bucket=names.bucket, Key=key, Body=body.encode())
                    written[f"{names.bucket}/{key}"] = hashlib.sha256(body.encode()).hexdigest()
            console.print(Text(f"each student wrote {len(STUDENT_WORK)} files to their bucket"))
            _demo_containers(target, endpoint, config, Path(handout_dir))

        console.rule("3/7 image labels (LabRekognition): upload, label, read the result (lab_scripts.rekognition)")
        with tempfile.TemporaryDirectory() as workdir:
            written.update(demo_image_labels(target, config, Path(workdir)))

        console.rule("4/7 teardown guard (LabGuard): one run, as if the class left the notebooks idle")
        demo_guard(target, config)

        console.rule("5/7 labctl stop-all: whatever still runs (lab_scripts.notebook, lab_scripts.instance)")
        if machines.stop_all(target, config, view):
            raise RuntimeError("stop-all could not stop everything")

        console.rule("6/7 labctl status: every environment stopped, nothing billing by the hour")
        rows = status_ops.status(target, config)
        print_status(rows, f"{config.course_id}: each student's environments")
        if {row.notebook_state for row in rows} != {"Stopped"} or {row.instance_state for row in rows} != {"stopped"}:
            raise RuntimeError("after stop-all, some environment still runs")

        console.rule("7/7 labctl teardown (the demo confirms: a throwaway emulator): freeze, archive, delete, audit")
        archive = Path(args.archive) if args.archive else archive_dir_for(config)
        print_teardown_plan(teardown_plan(target, config, archive))
        result = teardown(config, demo_config, target, archive, view)
        archived = result.archived_files()
        if archived != written:
            raise ArchiveError(f"archive does not match what was written ({len(archived)} vs {len(written)} files)")
        console.print(Text(f"archive matches what students and the labs wrote: {len(archived)} files, SHA-256 equal, "
                           f"in {archive}"))
        print_audit(result.audit)
    console.print(Text(f"main job finished in {time.monotonic() - started:.1f} s"))
    return 0 if result.audit.clean else 1
