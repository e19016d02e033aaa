"""`labctl demo --mode account-per-student`: the account-per-student journey in a fresh embedded emulator, with the
operations an instructor runs (provision, status, handout, teardown) and the CDK CLI deploying LabClassroom.

The course file's last roster row is held back and joins after the class is deployed: their account is created
and moved into the OU, and the stack set gives it the labs by itself (no deploy), as AWS's auto-deployment does.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import tempfile
import time
from pathlib import Path

from rich.text import Text

from course.config import LabConfig, load_config, to_toml
from lab_scripts.buckets import ArchiveError
from lab_scripts.guard_fn.handler import DONE, Report
from lab_scripts.organization import ensure_ou
from labkit import ROOT, emulator
from labkit.demo import DEMO_COURSE_DAYS, STUDENT_WORK, refuse_other_account
from labkit.deployed import physical_of
from labkit.events import Sink
from labkit.ops import guard as guard_ops, handouts as handout_ops, status as status_ops
from labkit.ops.accounts import deployed_accounts
from labkit.ops.errors import RefusedError
from labkit.ops.provision import prepare, provision
from labkit.ops.teardown import archive_dir_for, teardown, teardown_plan
from labkit.render import (LiveView, console, print_account_status, print_audit, print_guard_report, print_plan,
                           print_teardown_plan)
from labkit.target import Target, emulator_target

EXAMPLE = ROOT / "examples" / "account-per-student.toml"
DEMO_DIR = ROOT / ".labkit" / "demo-accounts"


def demo_course(source: LabConfig, ou: str, students: int, directory: Path = DEMO_DIR) -> tuple[LabConfig, Path]:
    """The course file the demo's operations read: the emulator's OU and the first `students` roster rows."""
    directory.mkdir(parents=True, exist_ok=True)
    roster = directory / "roster.csv"
    roster.write_text("id,name,email\n" + "".join(f"{r.id},{r.name},{r.email}\n" for r in source.roster[:students]))
    classroom = dataclasses.replace(source.classroom, organizational_unit=ou, roster=roster)
    config = dataclasses.replace(source, classroom=classroom,
                                 expires=dt.date.today() + dt.timedelta(days=DEMO_COURSE_DAYS))
    path = directory / "course.toml"
    path.write_text(to_toml(config))
    return load_config(path), path


def deploy_class(config: LabConfig, path: Path, target: Target, view: Sink) -> None:
    """labctl provision: the students' accounts into the OU, then the class stacks through the CDK CLI."""
    plan = prepare(config, path, target, view)
    print_plan(config, plan)
    provision(config, path, target, plan, view)


def show_accounts(target: Target, config: LabConfig) -> list[status_ops.AccountStatus]:
    """labctl status: refuses to go on unless every student's labs are CURRENT and their machines exist."""
    rows = status_ops.account_status(target, config)
    print_account_status(rows, config)
    broken = [row.student for row in rows if row.environment != "CURRENT (SUCCEEDED)" or row.bucket == "-"
              or "not deployed" in (row.notebook_state, row.instance_state)]
    if broken:
        raise RuntimeError(f"labs missing in the accounts of {', '.join(broken)}")
    return rows


def students_work(target: Target, config: LabConfig) -> dict[str, str]:
    """Each student writes their files to the bucket in their own account; bucket/key -> SHA-256."""
    written: dict[str, str] = {}
    for account, found in deployed_accounts(target, config).items():
        s3 = found.target.clients("s3")
        for bucket in physical_of(found.resources(), "AWS::S3::Bucket"):
            for key, body in STUDENT_WORK.items():
                s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
                written[f"{bucket}/{key}"] = hashlib.sha256(body.encode()).hexdigest()
    console.print(Text(f"each student wrote {len(STUDENT_WORK)} files to the bucket in their own account "
                       f"({len(written)} files)"))
    return written


def guard_after_hours(target: Target, config: LabConfig) -> Report:
    """labctl guard run, its clock a minute into the course's after-hours window: the class guard stops every
    student's notebook and GPU instance in their own account, through the stop-only role the stack set put there."""
    policy = config.guard.policy
    if not policy.after_hours:
        raise RefusedError(f"{config.course_id}: the demo's guard step needs guard.after_hours in the course file")
    start = dt.time.fromisoformat(policy.after_hours.split("-")[0])
    at = dt.datetime.combine(dt.date.today(), start, policy.zone()) + dt.timedelta(minutes=1)
    console.print(Text(f"the guard's handler runs in-process (the emulator cannot run Lambda), its clock at {at:%H:%M} "
                       f"{policy.timezone}: after hours ({policy.after_hours})", style="yellow"))
    report = guard_ops.guard_run(target, config, now=at)
    print_guard_report(report)
    reached = sorted({action.account for action in report.of(DONE) if action.account})
    console.print(Text(f"the guard stopped {len(report.of(DONE))} machine(s), in {len(reached)} student account(s)"))
    return report


def cmd_demo_accounts(args: argparse.Namespace, course_file: Path) -> int:
    """Accounts into the OU, LabClassroom through the CDK CLI, status and handouts per account, a late student,
    then teardown with archive and an audit of every account."""
    started = time.monotonic()
    source = load_config(course_file, allow_expired=True)
    if not source.classroom.per_account or len(source.roster) < 2:
        raise RefusedError(f"{source.course_id}: the account-per-student demo needs an account-per-student course "
                           "with a roster of at least 2 students (the last one joins late)")
    refuse_other_account(source, str(course_file))
    view = LiveView("demo", verbose=getattr(args, "verbose", False))
    with emulator.Emulator(source.region) as endpoint, view:
        target = emulator_target(endpoint)
        org = target.clients("organizations")
        org.create_organization(FeatureSet="ALL")
        ou = ensure_ou(org, f"{source.course_id}-students")
        early = len(source.roster) - 1
        config, path = demo_course(source, ou, early)
        console.rule(f"1/7 labctl provision: {early} student accounts into {ou}, then LabClassroom (CDK CLI)")
        deploy_class(config, path, target, view)

        console.rule("2/7 labctl status and handout: each student's notebook, bucket and GPU in their own account")
        show_accounts(target, config)
        with tempfile.TemporaryDirectory(prefix="labkit-demo-handouts-") as handout_dir:
            for handout in handout_ops.handouts(target, config, list(config.students), Path(handout_dir)):
                console.print(Text(f"{handout.student}: {handout.path.name} ({handout.credentials})"))

        console.rule("3/7 students work: files in the bucket of their own account")
        written = students_work(target, config)

        late = source.roster[-1].id
        console.rule(f"4/7 a late student: {late}'s account joins the OU and the stack set gives it the labs")
        config, path = demo_course(source, ou, len(source.roster))
        deploy_class(config, path, target, view)
        show_accounts(target, config)

        console.rule("5/7 labctl guard run after hours: the class guard stops machines in every student account")
        guard_after_hours(target, config)

        console.rule("6/7 labctl teardown: in every account freeze and archive the bucket, then delete the stack set")
        archive = Path(args.archive) if args.archive else archive_dir_for(config)
        print_teardown_plan(teardown_plan(target, config, archive))
        result = teardown(config, path, target, archive, view)
        archived = {key: digest for key, digest in result.archived_files().items() if key in written}
        if archived != written:
            raise ArchiveError(f"archive does not match what was written ({len(archived)} vs {len(written)} files)")
        console.print(Text(f"archive matches what the students wrote: {len(archived)} files, SHA-256 equal, "
                           f"in {archive}"))

        console.rule(f"7/7 audit of the class account and the {len(result.student_accounts)} student accounts")
        print_audit(result.audit)
    console.print(Text(f"account-per-student demo finished in {time.monotonic() - started:.1f} s"))
    return 0 if result.audit.clean else 1
