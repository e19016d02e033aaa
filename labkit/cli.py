"""labctl: the instructor's command line. It parses arguments, calls one operation (labkit/ops) per command and
renders its events and result; it holds no logic of its own. Every failure is one line on stderr."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

import boto3
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from rich.console import Console
from rich.text import Text

from course.catalog import DLAMIS
from course.config import ACCOUNT_PER_STUDENT, LABS, SINGLE_ACCOUNT, ConfigError, LabConfig, load_config
from course.layout import PER_STUDENT_LABS
from course.naming import STUDENT_ID
from course.roster import UnknownStudent, find_student, normalise_id
from lab_scripts import instance, notebook, preserve
from lab_scripts.audit import AuditReport
from lab_scripts.buckets import ArchiveError
from lab_scripts.cost import COLUMNS as COST_COLUMNS
from lab_scripts.cost import PriceTable, PricingError, format_lines, refresh_prices
from lab_scripts.doctor import diagnose
from lab_scripts.guard_fn.handler import Report, SettingsError
from lab_scripts.inventory import EXISTS, SKIPPED, Found
from lab_scripts.organization import OrganizationError
from labkit import ROOT, emulator
from labkit.emulator_timing import Timing
from labkit.cdk import CdkError
from labkit.ops import guard as guard_ops
from labkit.ops import handouts as handout_ops
from labkit.ops import machines, status as status_ops
from labkit.ops import students as student_ops
from labkit.ops.errors import OperationError, RefusedError
from labkit.ops.provision import ProvisionPlan, class_cost, prepare, provision
from labkit.ops.stacks import deploy
from labkit.ops.teardown import DestroyResult, TeardownPlan, archive_dir_for, destroy, teardown, teardown_plan
from labkit.render import (LiveView, console, count, line, make_console, print_account_status, print_audit,
                           print_guard_report, print_inventory, print_plan, print_status, print_teardown_plan, styled,
                           table)
from labkit.target import Target, aws_target, emulator_target

# Git-ignored with the rest of .labkit; the key files in it are mode 0600.
KEYS_ROOT = ROOT / ".labkit" / "keys"
HANDOUT_ROOT = ROOT / ".labkit" / "handouts"


class UsageError(RefusedError):
    """A request labctl refuses; the message says what to do instead."""


def _target(args: argparse.Namespace, config: LabConfig) -> Target:
    if args.aws:
        target = aws_target(config.region)
        account = target.clients("sts").get_caller_identity()["Account"]
        if account != config.account:
            raise UsageError(f"credentials are for account {account}, but {args.config} names {config.account}")
        return target
    endpoint = emulator.read_state()
    if endpoint is None:
        raise UsageError("no emulator running: `labctl local up` starts one (or pass --aws for a real account)")
    return emulator_target(endpoint)


def _labs(requested: list[str]) -> list[str]:
    unknown = [lab for lab in requested if lab not in LABS]
    if unknown:
        raise UsageError(f"unknown lab {unknown[0]!r} (labs: {', '.join(LABS)})")
    return requested or list(LABS)


def student_id(config: LabConfig, text: str, source: str, *, former: bool = False) -> str:
    """A student named by id, e-mail or unambiguous name; with `former`, also an id no longer on the roster
    (a student who left, whose stacks are still deployed)."""
    try:
        return find_student(config, text)
    except UnknownStudent as exc:
        if former and STUDENT_ID.match(normalise_id(text)):
            return normalise_id(text)
        raise UsageError(str(exc)) from None


# The log of the command now running, named again when it fails.
_LOGS: list[Path] = []


def _view(args: argparse.Namespace, command: str, out: Console | None = None) -> LiveView:
    view = LiveView(command, out, verbose=getattr(args, "verbose", False))
    _LOGS.append(view.log_path)
    return view


def print_class_status(target: Target, config: LabConfig, fmt: str = "table",
                       rows: list[status_ops.StudentStatus] | None = None) -> None:
    """Each student's environments: in this account, or (account-per-student mode) in their own account.
    `rows`: the students' status when the caller has read it already."""
    if config.classroom.per_account:
        rows = status_ops.account_status(target, config)
        if fmt == "json":
            print(json.dumps([asdict(row) for row in rows], indent=2))
            return
        print_account_status(rows, config)
    else:
        print_status(status_ops.status(target, config) if rows is None else rows,
                     f"{config.course_id}: each student's environments on {target.label}", fmt)
    if fmt == "table":
        for problem in status_ops.course_state(target, config).problems:
            console.print(line(("attention: ", "bold red"), problem))


def summarise_status(target: Target, config: LabConfig) -> None:
    """After a provision: one line for the class, the table only when it is small (`labctl status` shows all)."""
    rows = status_ops.status(target, config) if not config.classroom.per_account else []
    if not rows or len(rows) <= 10:
        print_class_status(target, config, rows=rows or None)
        return
    notebooks = sum(row.notebook_state == "InService" for row in rows)
    gpus = sum(row.instance_state in ("running", "stopped") for row in rows)
    console.print(Text(f"{count(len(rows), 'student')}: {count(notebooks, 'notebook')} InService, "
                       f"{count(gpus, 'GPU instance')} ready "
                       "(`labctl status` shows each student)"))


# -- commands -------------------------------------------------------------------------------------------------
def cmd_provision(args: argparse.Namespace, config: LabConfig) -> int:
    target = _target(args, config)
    # Scripts read stdout: with --json the plan and progress go to stderr, the JSON to stdout.
    out = make_console(stderr=True) if args.json else console
    with _view(args, "provision", out) as view:
        source = f"roster {config.classroom.roster}" if config.roster else str(args.config)
        view.print(Text(f"{config.course_id}: {count(len(config.students), 'student')} from {source}, "
                        f"{config.classroom.mode}, into {target.label}"))
        plan = prepare(config, Path(args.config), target, view)
        print_plan(config, plan, out)
        if args.dry_run:
            view.print(Text("dry run: nothing deployed (run without --dry-run to provision)"))
            if args.json:
                print(json.dumps(plan.to_dict(), indent=2, default=str))
            return 0
        if not plan.to_deploy:
            view.print(Text("nothing to change: every stack is as the course file describes"))
        result = provision(config, Path(args.config), target, plan, view)
    if result.skipped_types:
        out.print(line(("The emulator reported these types created without creating them: ", "yellow"),
                       ", ".join(result.skipped_types)))
    if args.json:
        print(json.dumps([asdict(row) for row in status_ops.status(target, config)], indent=2))
    else:
        summarise_status(target, config)
    if result.plan.removed:
        first = result.plan.removed[0]
        out.print(line(("still deployed for students no longer in the roster: ", "yellow"),
                       f"{', '.join(result.plan.removed)}; `labctl destroy --student {first} --yes` archives their "
                       "work and removes their stacks"))
    return 0


# What a Ctrl-C leaves behind, for the commands that deploy (teardown names its own: it keeps a journal). The CDK
# CLI stops waiting, but CloudFormation finishes what it started; a rerun waits for those stacks and deploys the rest.
ON_INTERRUPT = {
    "provision": "CloudFormation finishes the stacks it already started; `labctl provision` again deploys the rest",
    "deploy": "CloudFormation finishes the stacks it already started; the same command again deploys the rest",
}


def cmd_deploy(args: argparse.Namespace, config: LabConfig) -> int:
    target = _target(args, config)
    with _view(args, "deploy") as view:
        view.print(Text(f"deploying to {target.label}"))
        inventory = deploy(config, Path(args.config), target, _labs(args.labs), view)
    print_inventory(inventory)
    return 0


def _archive(args: argparse.Namespace, config: LabConfig) -> Path | None:
    return None if args.no_archive else Path(args.archive) if args.archive else archive_dir_for(config)


def cmd_destroy(args: argparse.Namespace, config: LabConfig) -> int:
    students = [student_id(config, s, args.config, former=True) for s in args.student] if args.student else None
    target = _target(args, config)
    labs = _labs(args.labs)
    archive = _archive(args, config)
    plan = teardown_plan(target, config, archive, labs, students)
    if students is not None and not plan.stacks:
        raise UsageError(f"no stack of {', '.join(students)} in {', '.join(labs)} (labctl status shows the class)")
    print_teardown_plan(plan)
    if not args.yes:
        console.print(Text("dry run: nothing changed (add --yes to do it)"))
        return 0
    with _view(args, "destroy") as view:
        result = destroy(config, Path(args.config), target, labs, archive_dir=archive, emit=view, students=students)
    print_audit(result.audit)
    return 0 if result.audit.clean else 1


def _check_confirmation(args: argparse.Namespace, config: LabConfig) -> None:
    """A real teardown needs --yes and the course id, typed at a prompt or given with --confirm (scripts, CI)."""
    if args.confirm is not None and args.confirm != config.course_id:
        raise UsageError(f"--confirm {args.confirm!r} is not this course's id ({config.course_id!r} in "
                         f"{args.config}); nothing changed")
    if not args.yes or args.confirm is not None:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"--yes needs --confirm {config.course_id} when there is no terminal to type it in; "
                         "nothing changed")
    typed = input(f"This deletes every lab of {config.course_id}. Type the course id to go on: ").strip()
    if typed != config.course_id:
        raise UsageError(f"typed {typed!r}, not {config.course_id!r}; nothing changed")


def run_teardown(args: argparse.Namespace, config: LabConfig, target: Target, archive: Path | None) -> DestroyResult:
    """Teardown with the live view, then the archive's summary line (the caller prints the audit)."""
    with _view(args, "teardown") as view:
        result = teardown(config, Path(args.config), target, archive, view)
    if result.archive_dir is not None:
        files = result.archived_files()
        console.print(Text(f"archived {count(len(files), 'file')} from {count(len(result.archived), 'bucket')} to "
                           f"{result.archive_dir} "
                           "(every version, SHA-256 manifest per bucket, verified before emptying)"))
    return result


def cmd_teardown(args: argparse.Namespace, config: LabConfig) -> int:
    _check_confirmation(args, config)
    target = _target(args, config)
    archive = _archive(args, config)
    print_teardown_plan(teardown_plan(target, config, archive))
    if not args.yes:
        console.print(Text(f"dry run: nothing changed (to do it: --yes, then type {config.course_id}; or "
                           f"--yes --confirm {config.course_id})"))
        return 0
    try:
        result = run_teardown(args, config, target, archive)
    except KeyboardInterrupt:
        # Ctrl-C: every finished step is in the journal, so the same command goes on from there.
        raise KeyboardInterrupt(f"`labctl teardown --yes --confirm {config.course_id}` continues it from where it "
                                "stopped") from None
    print_audit(result.audit)
    return 0 if result.audit.clean else 1


def cmd_stop_all(args: argparse.Namespace, config: LabConfig) -> int:
    target = _target(args, config)
    with _view(args, "stop-all") as view:
        failures = machines.stop_all(target, config, view)
    for failure in failures:
        console.print(line(("not stopped ", "bold red"), failure))
    return 1 if failures else 0


def _guard_time(at: str | None, config: LabConfig) -> dt.datetime | None:
    if at is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(at)
    except ValueError:
        raise UsageError(f"--at {at!r} is not a date and time (e.g. 2027-04-01T09:00)") from None
    # A time without zone is read in the course's guard time zone, as the after-hours window is.
    return moment if moment.tzinfo else moment.replace(tzinfo=config.guard.policy.zone())


def cmd_guard(args: argparse.Namespace, config: LabConfig) -> int:
    target = _target(args, config)
    if args.action == "resume":
        console.print(Text(guard_ops.guard_resume(target, config)))
        return 0
    report = guard_ops.guard_run(target, config, now=_guard_time(args.at, config),
                                 dry_run=True if args.dry_run else None)
    console.print(Text(f"guard function {config.names.guard.function}: its code, run here with its deployed "
                       "environment"))
    print_guard_report(report)
    return 1 if report.of("failed") else 0


def cmd_allow(args: argparse.Namespace, config: LabConfig) -> int:
    student = student_id(config, args.student, args.config)
    marked = guard_ops.allow(_target(args, config), config, student)
    console.print(Text(f"{student}: cap lifted for today on {', '.join(marked)}"))
    return 0


def cmd_audit(args: argparse.Namespace, config: LabConfig) -> int:
    report = guard_ops.audit(_target(args, config), config)
    print_audit(report)
    return 1 if report.billable else 0


def cmd_status(args: argparse.Namespace, config: LabConfig) -> int:
    print_class_status(_target(args, config), config, "json" if args.json else "csv" if args.csv else "table")
    return 0


def cmd_handout(args: argparse.Namespace, config: LabConfig) -> int:
    target = _target(args, config)
    if config.expires < dt.date.today():
        raise UsageError(f"the course ended on {config.expires}; no new handouts")
    students = [student_id(config, s, args.config) for s in args.students] or list(config.students)
    out = Path(args.out) if args.out else HANDOUT_ROOT / config.course_id
    made = handout_ops.handouts(target, config, students, out)
    if args.json:
        print(json.dumps([{k: str(v) for k, v in asdict(h).items()} for h in made], indent=2))
        return 0
    for handout in made:
        console.print(Text(f"{handout.student}: {handout.path} and {handout.html.name} (mode 0600); credentials: "
                           f"{handout.credentials}"))
    console.print(Text("hand each student their own files privately (the .html pastes into a mail or an LMS; "
                       "send the .credentials file separately, never in plain mail)"))
    return 0


def cmd_cost(args: argparse.Namespace, config: LabConfig) -> int:
    prices = PriceTable.bundled()
    if args.pricing:
        # The Price List API is answered in us-east-1 for every region's prices; the emulator has none.
        if not args.aws:
            raise UsageError("--pricing asks the AWS Price List API: add --aws (the emulator has no Price List API)")
        client = boto3.Session().client("pricing", region_name="us-east-1")
        prices = refresh_prices(client, config.region, [config.sagemaker.instance_type],
                                [config.dlami.instance_type], base=prices)
    result = class_cost(config, prices)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return 0
    console.print(table(f"{config.course_id}: estimated cost until {config.expires} ({result.weeks:.1f} weeks)",
                        list(COST_COLUMNS), [list(row) for row in format_lines(result)]))
    console.print(Text("assumptions: " + "; ".join(result.assumptions)))
    return 0


def cmd_notebook(args: argparse.Namespace, config: LabConfig) -> int:
    student = student_id(config, args.student, args.config)
    console.print(Text(machines.notebook_action(_target(args, config), config, student, args.action)))
    return 0


def cmd_gpu(args: argparse.Namespace, config: LabConfig) -> int:
    student = student_id(config, args.student, args.config)
    login = DLAMIS[config.dlami.ami_type].login_user
    console.print(Text(machines.gpu_action(_target(args, config), config, student, args.action, login)))
    return 0


def cmd_doctor(args: argparse.Namespace, config: LabConfig) -> int:
    target = _target(args, config)
    report = diagnose(target.clients("ec2"), target.clients("service-quotas"), instance_type=config.dlami.instance_type,
                      students=len(config.students), zone=config.dlami.availability_zone)
    quota = "unknown" if report.quota_vcpus is None else f"{report.quota_vcpus:.0f}"
    console.print(Text(f"{report.instance_type} in {report.region}: offered in {', '.join(report.zones) or 'no zone'}; "
                       f"{count(len(config.students), 'student')} need {report.needed_vcpus} vCPUs, quota {quota}"))
    for problem in report.problems:
        console.print(line(("problem ", "bold red"), problem))
    if report.ok:
        console.print(styled("ready", "bold green"))
    return 0 if report.ok else 1


def cmd_keys(args: argparse.Namespace, config: LabConfig) -> int:
    student = student_id(config, args.student, args.config) if args.student is not None else None
    target = _target(args, config)
    out = Path(args.out) if args.out else KEYS_ROOT / config.course_id
    if args.action == "issue":
        for issued in machines.issue_keys(target, config, student, out, csv=args.csv):
            console.print(Text(f"{issued.student}: access key {issued.masked_key} of {issued.user} -> {issued.path} "
                               "(mode 0600)"))
        profile = "" if args.csv else f" (AWS profile [{config.course_id}], region {config.region})"
        console.print(Text(f"hand each file to its student privately{profile}"))
        return 0
    for text in machines.key_action(target, config, student, args.action, out):
        console.print(Text(text))
    return 0


def cmd_reset(args: argparse.Namespace, config: LabConfig) -> int:
    student = student_id(config, args.student, args.config)
    target = _target(args, config)
    archive = Path(args.archive) if args.archive else archive_dir_for(config)
    plan = teardown_plan(target, config, archive, list(PER_STUDENT_LABS), [student])
    print_teardown_plan(plan)
    console.print(Text(f"then: deploy {student}'s stacks again and put every archived file back into their new "
                       "bucket (checked by SHA-256)"))
    if not args.yes:
        console.print(Text("dry run: nothing changed (add --yes to do it)"))
        return 0
    with _view(args, "reset") as view:
        result = student_ops.reset(config, Path(args.config), target, student, archive, view)
    console.print(Text(f"{student}: a fresh notebook and GPU instance; {result.checked} files restored, SHA-256 "
                       f"equal; the archive stays in {archive}"))
    return 0


def cmd_restore(args: argparse.Namespace, config: LabConfig) -> int:
    student = student_id(config, args.student, args.config)
    restored = student_ops.restore(_target(args, config), config, student, Path(args.from_),
                                   "latest" if args.latest else "all")
    console.print(Text(f"restored {restored.versions} versions ({restored.bytes} bytes) and {restored.delete_markers} "
                       f"deletes into s3://{restored.bucket}"))
    return 0


def cmd_collect(args: argparse.Namespace, config: LabConfig) -> int:
    students = [student_id(config, s, args.config) for s in args.students] or list(config.students)
    out = Path(args.out) if args.out else ROOT / ".labkit" / "collected" / config.course_id
    for found in student_ops.collect(_target(args, config), config, students, out):
        skipped = f"; skipped (too large): {', '.join(found.skipped)}" if found.skipped else ""
        console.print(Text(f"{found.student}: {found.notebooks} notebooks, {found.files} files ({found.bytes} bytes) "
                           f"-> {found.folder}{skipped}"))
    return 0


def cmd_preserved(args: argparse.Namespace, config: LabConfig) -> int:
    ec2 = _target(args, config).clients("ec2")
    if args.action == "list":
        rows = preserve.list_preserved(ec2, config.course_id)
        if not rows:
            console.print(Text(f"{config.course_id}: no GPU homes kept as snapshots (teardown, destroy and reset keep "
                               "one per student's GPU instance)"))
            return 0
        console.print(table(f"{config.course_id}: GPU homes kept as snapshots", ["student", "snapshot", "GB", "state"],
                            [[r.student, r.snapshot_id, str(r.size_gb), r.state] for r in rows]))
        console.print(Text(f"{count(len(rows), 'snapshot')}, {sum(r.size_gb for r in rows)} GB: at most "
                           f"{sum(r.usd_per_month for r in rows):.2f} USD/month until `labctl preserved delete`"))
        return 0
    students = [student_id(config, s, args.config, former=True) for s in args.student] if args.student else None
    deleted = preserve.delete_preserved(ec2, config.course_id, students=students, dry_run=not args.yes)
    verb = "deleted" if args.yes else "would delete (add --yes)"
    console.print(Text(f"{verb}: {', '.join(r.snapshot_id for r in deleted) or 'no snapshot'}"))
    return 0


def cmd_repair(args: argparse.Namespace, config: LabConfig) -> int:
    target = _target(args, config)
    archive = archive_dir_for(config)
    with _view(args, "repair") as view:
        removed = student_ops.repair(config, target, archive, view)
    console.print(Text(f"removed {len(removed)} stuck stack(s){': ' + ', '.join(removed) if removed else ''}"))
    return 0


def cmd_local(args: argparse.Namespace) -> int:
    if args.action == "up":
        # Only the region is read: an emulator deploys nothing, so a course that has ended may start one too.
        config = load_config(args.config, allow_expired=True)
        timing = Timing(time_scale=args.time_scale) if args.aws_timing else None
        endpoint = emulator.start_detached(config.region, args.port, bootstrap_cdk=True, timing=timing)
        console.print(Text(f"emulator running at {endpoint.url}; `eval \"$(labctl local env)\"` sets the variables "
                           "for cdk, the aws CLI and boto3"))
    elif args.action == "down":
        console.print(Text("emulator stopped" if emulator.stop_detached() else "no emulator was running"))
    else:
        endpoint = emulator.read_state()
        if endpoint is None:
            raise UsageError("no emulator running: `labctl local up` starts one")
        print("\n".join(endpoint.shell_lines()))
    return 0


DEFAULT_CONFIG = "lab.toml"
DEMO_MODES = (SINGLE_ACCOUNT, ACCOUNT_PER_STUDENT)


class _Parser(argparse.ArgumentParser):
    """argparse prints the whole usage block on a bad flag; labctl errors are one line, like every other."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="labctl", description="Provision and tear down ML course labs.")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"course file (default: {DEFAULT_CONFIG})")
    parser.add_argument("--verbose", "-v", action="store_true", help="stream the CDK CLI's own output")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_target(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--aws", action="store_true", help="act on the real AWS account of the config "
                       "(default: the local emulator from `labctl local up`)")
        return p

    def with_archive(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--archive", help="archive folder (default: .labkit/archive/<course>-<time>)")
        group.add_argument("--no-archive", action="store_true", help="delete student data without archiving it")

    p = sub.add_parser("demo", help="deploy, show, stop, destroy and audit in a fresh embedded emulator")
    p.add_argument("--archive", help="where to archive student buckets (default: .labkit/archive/...)")
    p.add_argument("--mode", choices=DEMO_MODES, default=DEMO_MODES[0],
                   help="account-per-student: Organizations accounts and the LabClassroom stack set (course file: "
                   "examples/account-per-student.toml unless --config names another)")
    with_target(sub.add_parser("deploy", help="deploy lab stacks")).add_argument("labs", nargs="*")
    p = with_target(sub.add_parser("destroy", help="archive student data, delete lab stacks, audit (dry run "
                                   "unless --yes)"))
    p.add_argument("labs", nargs="*")
    p.add_argument("--student", action="append", metavar="STUDENT",
                   help="only this student's own stacks (id, e-mail or name; repeatable); also a student who left")
    p.add_argument("--yes", action="store_true", help="really do it")
    with_archive(p)
    p = with_target(sub.add_parser("teardown", help="end the course: archive student data, delete every lab and "
                                   "the guard, audit (dry run unless --yes and the course id); resumable"))
    p.add_argument("--yes", action="store_true", help="really do it (then type the course id, or pass --confirm)")
    p.add_argument("--confirm", metavar="COURSE_ID", help="the course id, for scripts without a terminal")
    with_archive(p)
    with_target(sub.add_parser("stop-all", help="stop every running notebook and GPU instance of the course now"))
    p = with_target(sub.add_parser("guard", help="run the deployed guard's code here now, or resume its schedule"))
    p.add_argument("action", choices=["run", "resume"])
    p.add_argument("--dry-run", action="store_true", help="report only, whatever guard.dry_run says")
    p.add_argument("--at", help="pretend it is this time (ISO 8601; without a zone: guard.timezone), "
                   "e.g. the day after expiry to preview the course's end")
    p = with_target(sub.add_parser("allow", help="lift a student's spend cap for the rest of the day"))
    p.add_argument("student", help="id, e-mail or name")
    with_target(sub.add_parser("audit", help="list everything of the course still present, with estimated "
                               "USD/hour; exit 1 if billable"))
    p = with_target(sub.add_parser("provision", help="compare the roster with what is deployed, show the change "
                                   "and cost, deploy only what changed, show the class's status"))
    p.add_argument("--dry-run", action="store_true", help="check and show the plan; deploy nothing")
    p.add_argument("--json", action="store_true", help="JSON on stdout (the plan with --dry-run, else each "
                   "student's status); everything else on stderr")
    p = with_target(sub.add_parser("status", help="each student's notebook, GPU instance and access keys"))
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true")
    group.add_argument("--csv", action="store_true", help="one row per student, for a class spreadsheet")
    p = with_target(sub.add_parser("handout", help="private files per student: Markdown and HTML handout, "
                                   "credentials profile (mode 0600)"))
    p.add_argument("students", nargs="*", help="students: id, e-mail or name (default: every student)")
    p.add_argument("--out", help=f"folder (default: {HANDOUT_ROOT.relative_to(ROOT)}/<course>)")
    p.add_argument("--json", action="store_true")
    p = with_target(sub.add_parser("cost", help="estimated cost of the class until it expires, and what idle "
                                   "stop saves"))
    p.add_argument("--pricing", action="store_true", help="refresh prices from the AWS Price List API (with --aws)")
    p.add_argument("--json", action="store_true")
    p = with_target(sub.add_parser("notebook", help="start/stop/status/url of one student's notebook"))
    p.add_argument("action", choices=["start", "stop", "status", "url"])
    p.add_argument("student", help="id, e-mail or name")
    p = with_target(sub.add_parser("gpu", help="start/stop/terminate/status/connect of one student's GPU instance"))
    p.add_argument("action", choices=["start", "stop", "terminate", "status", "connect"])
    p.add_argument("student", help="id, e-mail or name")
    with_target(sub.add_parser("doctor", help="is the GPU type offered here, and does the vCPU quota fit the class?"))
    p = with_target(sub.add_parser("keys", help="access keys of the students' container users (LabContainers)"))
    p.add_argument("action", choices=["issue", "list", "deactivate", "delete"])
    p.add_argument("student", nargs="?", help="one student: id, e-mail or name (default: every student)")
    p.add_argument("--out", help=f"folder for issued key files (default: {KEYS_ROOT.relative_to(ROOT)}/<course>)")
    p.add_argument("--csv", action="store_true", help="issue as CSV (spreadsheet-safe) instead of a credentials file")
    p = with_target(sub.add_parser("reset", help="archive one student's work, rebuild their notebook and GPU "
                                   "instance, put their files back (dry run unless --yes)"))
    p.add_argument("student", help="id, e-mail or name")
    p.add_argument("--yes", action="store_true", help="really do it")
    p.add_argument("--archive", help="archive folder (default: .labkit/archive/<course>-<time>)")
    p = with_target(sub.add_parser("restore", help="put an archived bucket back into a student's bucket"))
    p.add_argument("student", help="id, e-mail or name")
    p.add_argument("--from", dest="from_", required=True, metavar="ARCHIVE",
                   help="the bucket's archive folder (or its manifest.json)")
    p.add_argument("--latest", action="store_true", help="only each file's latest version")
    p = with_target(sub.add_parser("collect", help="copy students' notebooks from their buckets, for grading"))
    p.add_argument("students", nargs="*", help="students: id, e-mail or name (default: every student)")
    p.add_argument("--out", help="folder (default: .labkit/collected/<course>)")
    p = with_target(sub.add_parser("preserved", help="GPU homes kept as snapshots by teardown/destroy"))
    p.add_argument("action", choices=["list", "delete"])
    p.add_argument("--student", action="append", metavar="STUDENT", help="only theirs (repeatable)")
    p.add_argument("--yes", action="store_true", help="really delete")
    with_target(sub.add_parser("repair", help="remove stacks stuck in REVIEW_IN_PROGRESS, ROLLBACK_COMPLETE or "
                               "DELETE_FAILED (archiving any bucket they hold)"))
    p = sub.add_parser("local", help="run the embedded emulator in the background")
    p.add_argument("action", choices=["up", "down", "env"])
    p.add_argument("--port", type=int, help="port for `up` (default: a free one)")
    p.add_argument("--aws-timing", action="store_true", help="`up`: stacks and notebooks take as long as in AWS "
                   "(scaled by --time-scale; README, The embedded emulator)")
    p.add_argument("--time-scale", type=float, default=0.01, help="with --aws-timing: emulator seconds per AWS "
                   "second (default 0.01)")
    return parser


COMMANDS = {"deploy": cmd_deploy, "destroy": cmd_destroy, "teardown": cmd_teardown, "stop-all": cmd_stop_all,
            "guard": cmd_guard, "audit": cmd_audit, "status": cmd_status, "notebook": cmd_notebook, "gpu": cmd_gpu,
            "doctor": cmd_doctor, "keys": cmd_keys, "provision": cmd_provision, "handout": cmd_handout,
            "cost": cmd_cost, "reset": cmd_reset, "restore": cmd_restore, "collect": cmd_collect,
            "preserved": cmd_preserved, "repair": cmd_repair, "allow": cmd_allow}
# Commands that still work once the course has ended: they look, stop, or take down.
AFTER_EXPIRY = {"destroy", "teardown", "stop-all", "guard", "audit", "status", "notebook", "gpu", "keys", "handout",
                "cost", "restore", "collect", "preserved", "repair"}


def _one_line(exc: Exception, aws: bool) -> str:
    """botocore's message on one line. A web page instead of an AWS error (an emulator's HTTP 500: an action
    moto lacks, or a crash) is named rather than printed; the emulator's log holds its traceback."""
    text = str(exc)
    if "<html" in text.lower():
        where = "" if aws else f" (the emulator's log: {emulator.LOG_FILE})"
        text = text.split(": <", 1)[0] + f": the endpoint answered with a web page, not an AWS error{where}"
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo" and args.mode == ACCOUNT_PER_STUDENT:
            from labkit.demo_accounts import EXAMPLE, cmd_demo_accounts

            return cmd_demo_accounts(args, EXAMPLE if args.config == DEFAULT_CONFIG else Path(args.config))
        if args.command == "demo":
            from labkit.demo import cmd_demo  # only the demo needs the sample images and the emulator's lifetime

            return cmd_demo(args)
        if args.command == "local":
            return cmd_local(args)
        config = load_config(args.config, allow_expired=args.command in AFTER_EXPIRY)
        return COMMANDS[args.command](args, config)
    except (ConfigError, RefusedError) as exc:
        # A roster with several problems names each on its own line.
        for problem in str(exc).splitlines():
            print(f"labctl: error: {problem}", file=sys.stderr)
        return 2
    except (OperationError, CdkError, ArchiveError, notebook.NotebookError, instance.InstanceError, SettingsError,
            PricingError, OrganizationError, preserve.PreserveError, RuntimeError) as exc:
        print(f"labctl: error: {exc}", file=sys.stderr)
        logs = [path for path in _LOGS if path.exists()]
        if logs:
            print(f"labctl: the CDK CLI's full output: {logs[-1]}", file=sys.stderr)
        return 1
    except EndpointConnectionError as exc:
        url = exc.kwargs.get("endpoint_url", "")
        if getattr(args, "aws", False):
            print(f"labctl: AWS error: nothing answers at {url} (the network, a proxy or the region)", file=sys.stderr)
        else:
            # The detached emulator died after this command found it (killed, or out of memory); its state is gone.
            print(f"labctl: the embedded emulator at {url} stopped answering (its log: {emulator.LOG_FILE}); "
                  "`labctl local up` starts a new, empty one", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as exc:
        print(f"labctl: AWS error: {_one_line(exc, getattr(args, 'aws', False))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        hint = str(exc) or ON_INTERRUPT.get(args.command, "")
        print("labctl: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
