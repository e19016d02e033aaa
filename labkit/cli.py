"""labctl: the instructor's command line. Every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lab_scripts import access_keys, instance, notebook
from lab_scripts.audit import audit_course
from lab_scripts.buckets import ArchiveError
from lab_scripts.cost import COLUMNS as COST_COLUMNS
from lab_scripts.cost import CostEstimate, PriceTable, PricingError, format_lines, refresh_prices
from lab_scripts.doctor import diagnose
from lab_scripts.guard import run_deployed_guard
from lab_scripts.guard_fn.handler import Report, SettingsError
from lab_scripts.inventory import SKIPPED
from lab_scripts.organization import OrganizationError, ensure_student_accounts
from lab_scripts.quotas import Capacity
from labkit import ROOT, classroom, emulator
from course.catalog import DLAMIS
from labkit.cdk import ASSEMBLY, CdkError
from course.config import LABS, ConfigError, LabConfig, load_config
from labkit.jobs import (DestroyResult, Target, aws_target, deploy, deployed_instances, deployed_notebooks,
                         deployed_users, destroy, dropped_out_stacks, emulator_target, ensure_bootstrapped,
                         running_machines, stacks_to_destroy, synthesize, teardown_plan)
from labkit.report import print_audit, print_inventory

# Rich falls back to 80 columns without a terminal (CI logs), which folds ARNs into unreadable columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _progress() -> Progress:
    """A progress bar for long work; without a terminal (CI logs) it leaves no trace but the printed lines."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console, transient=not console.is_terminal)


def echo(line: str) -> None:
    """Progress lines from the CDK CLI and jobs: printed verbatim, never parsed as markup."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)
ARCHIVE_ROOT = ROOT / ".labkit" / "archive"
# Git-ignored with the rest of .labkit; the key files in it are mode 0600.
KEYS_ROOT = ROOT / ".labkit" / "keys"
HANDOUT_ROOT = ROOT / ".labkit" / "handouts"


class UsageError(RuntimeError):
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


def _student_target(args: argparse.Namespace, config: LabConfig) -> Target:
    """The target for a one-student command, after checking the student is in the course file."""
    if args.student not in config.students:
        raise UsageError(f"student {args.student!r} is not in {args.config}")
    return _target(args, config)


def _deployed(found: dict[str, str], student: str, what: str, lab: str) -> str:
    if student not in found:
        raise UsageError(f"{student} has no deployed {what} (labctl deploy {lab})")
    return found[student]


def _container_users(target: Target, config: LabConfig, student: str | None) -> dict[str, str]:
    """Student -> IAM user of the deployed LabContainers stack: every student's, or the one asked for."""
    users = deployed_users(target, config)
    if not users:
        raise UsageError("LabContainers is not deployed (labctl deploy LabContainers)")
    if student is not None and student not in users:
        raise UsageError(f"{student} has no container user yet (students added after the deploy need "
                         "`labctl deploy LabContainers`)")
    return {name: users[name] for name in config.students if name in users and student in (None, name)}


def issue_keys(target: Target, config: LabConfig, student: str | None, out: Path, *,
               csv: bool = False) -> list[tuple[str, access_keys.IssuedKey, Path]]:
    """A new key per student, each in its own private file; what is printed never holds the secret."""
    iam = target.clients("iam")
    users = _container_users(target, config, student)
    # Checked for all first, so that a refusal leaves no half-issued class behind.
    holders = [user for user in users.values() if access_keys.list_keys(iam, user)]
    if holders:
        raise UsageError(f"{', '.join(holders)} already hold(s) an access key; `labctl keys delete STUDENT` first")
    issued = []
    for name, user in users.items():
        key = access_keys.issue(iam, user)
        if csv:
            path = access_keys.write_private(out / f"{name}.csv", access_keys.csv_text(key, config.region))
        else:
            text = access_keys.credentials_text(key, config.course_id, config.region)
            path = access_keys.write_private(out / f"{name}.credentials", text)
        echo(f"{name}: access key {access_keys.masked(key.access_key_id)} of {user} -> {path} (mode 0600)")
        issued.append((name, key, path))
    return issued


def cmd_keys(args: argparse.Namespace, config: LabConfig) -> int:
    if args.student is not None and args.student not in config.students:
        raise UsageError(f"student {args.student!r} is not in {args.config}")
    target = _target(args, config)
    out = Path(args.out) if args.out else KEYS_ROOT / config.course_id
    if args.action == "issue":
        if config.expires < dt.date.today():
            raise UsageError(f"the course ended on {config.expires}; no new keys (deactivate or delete still work)")
        issue_keys(target, config, args.student, out, csv=args.csv)
        profile = "" if args.csv else f" (AWS profile [{config.course_id}], region {config.region})"
        echo(f"hand each file to its student privately{profile}")
        return 0
    iam = target.clients("iam")
    for name, user in _container_users(target, config, args.student).items():
        if args.action == "list":
            keys = access_keys.list_keys(iam, user)
            listed = ", ".join(f"{access_keys.masked(k.access_key_id)} {k.status}" for k in keys)
            echo(f"{name}: {user}: {listed or 'no access keys'}")
        elif args.action == "deactivate":
            changed = access_keys.deactivate(iam, user)
            echo(f"{name}: deactivated {len(changed)} access key(s) of {user}")
        else:
            deleted = access_keys.delete(iam, user)
            # The local copies hold a dead key now; removing them leaves nothing to mistake for a live one.
            removed = [path for path in (out / f"{name}.credentials", out / f"{name}.csv") if path.exists()]
            for path in removed:
                path.unlink()
            echo(f"{name}: deleted {len(deleted)} access key(s) of {user}, {len(removed)} local file(s)")
    return 0


def archive_dir_for(config: LabConfig) -> Path:
    return ARCHIVE_ROOT / f"{config.course_id}-{dt.datetime.now():%Y%m%d-%H%M%S}"


def cmd_deploy(args: argparse.Namespace, config: LabConfig) -> int:
    target = _target(args, config)
    console.print(f"deploying to {target.label}")
    print_inventory(console, deploy(config, Path(args.config), target, _labs(args.labs), echo=echo))
    return 0


def cmd_destroy(args: argparse.Namespace, config: LabConfig) -> int:
    students = classroom.parse_students(args.student) if args.student else None
    target = _target(args, config)
    labs = _labs(args.labs)
    archive = None if args.no_archive else Path(args.archive) if args.archive else archive_dir_for(config)
    units = stacks_to_destroy(target, config, labs, students)
    if students is not None and not units:
        raise UsageError(f"no stack of {', '.join(students)} in {', '.join(labs)} (labctl status shows the class)")
    plan = [
        f"target: {target.label}",
        f"stacks: {', '.join(unit.stack_name for unit in units)}",
        "stop their notebooks",
        f"archive every lab bucket to {archive}, then empty it" if archive else "empty every lab bucket WITHOUT archive",
        "terminate GPU instances: their volumes are deleted (students keep work in their buckets)",
        "delete the container users' access keys and the class repository's images",
        "delete the stacks and the notebooks' log streams, then audit for leftovers",
    ]
    console.print("plan:\n  " + "\n  ".join(plan))
    if not args.yes:
        console.print("dry run: nothing changed (add --yes to do it)")
        return 0
    result = destroy(config, Path(args.config), target, labs, archive_dir=archive, echo=echo, students=students)
    print_audit(console, result.audit)
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


def archived_files(result: DestroyResult) -> dict[str, str]:
    """bucket/key -> SHA-256 of every archived object, from the archive manifests."""
    return {
        f"{item.bucket}/{entry['key']}": entry["sha256"]
        for item in result.archived if item.manifest
        for entry in json.loads(item.manifest.read_text())["objects"]
    }


def teardown(config: LabConfig, config_path: Path, target: Target, archive: Path | None) -> DestroyResult:
    """Every lab of the course, LabGuard included: archive, delete, audit. Confirming is the caller's part, and
    so is printing the audit (the demo checks the archive first)."""
    result = destroy(config, config_path, target, list(LABS), archive_dir=archive, echo=echo)
    if archive is not None:
        console.print(f"archived {len(archived_files(result))} files from {len(result.archived)} buckets to "
                      f"{archive} (SHA-256 manifest per bucket, verified before emptying)")
    return result


def cmd_teardown(args: argparse.Namespace, config: LabConfig) -> int:
    _check_confirmation(args, config)
    target = _target(args, config)
    archive = None if args.no_archive else Path(args.archive) if args.archive else archive_dir_for(config)
    console.print("plan:\n  " + "\n  ".join(teardown_plan(target, config, archive)))
    if not args.yes:
        console.print(f"dry run: nothing changed (to do it: --yes, then type {config.course_id}; or "
                      f"--yes --confirm {config.course_id})")
        return 0
    result = teardown(config, Path(args.config), target, archive)
    print_audit(console, result.audit)
    return 0 if result.audit.clean else 1


def _notebook_stopped(sm: Any, name: str, delay: int) -> str:
    return notebook.stop(sm, name, delay=delay).status


def _instance_stopped(ec2: Any, instance_id: str, delay: int) -> str:
    state = instance.stop(ec2, instance_id, delay=delay)
    return f"{state.state} ({state.instance_type})"


def stop_all(target: Target, config: LabConfig) -> list[str]:
    """Stop every running notebook and instance of the course, with a progress bar; returns the failures."""
    notebooks, instances = running_machines(target, config)
    if not notebooks and not instances:
        console.print("nothing of the course is running")
        return []
    sm, ec2, delay = target.clients("sagemaker"), target.clients("ec2"), target.wait_delay
    requests = [(f"notebook {name}", functools.partial(notebook.stop, sm, name, wait=False),
                 functools.partial(_notebook_stopped, sm, name, delay)) for name in notebooks]
    requests += [(f"instance {i}", functools.partial(instance.stop, ec2, i, wait=False),
                  functools.partial(_instance_stopped, ec2, i, delay)) for i in instances]
    failures: list[str] = []
    # Every stop is requested first, so the machines stop together; then each is waited for.
    waits: list[tuple[str, Callable[[], str]]] = []
    for label, request, wait in requests:
        try:
            request()
            waits.append((label, wait))
        except (notebook.NotebookError, instance.InstanceError) as exc:
            failures.append(str(exc))
    with _progress() as progress:
        task = progress.add_task("stopping", total=len(waits))
        for label, wait in waits:
            progress.update(task, description=label)
            try:
                progress.console.print(f"{label}: {wait()}")
            except (notebook.NotebookError, instance.InstanceError) as exc:
                failures.append(str(exc))
            progress.advance(task)
    for failure in failures:
        console.print(f"[bold red]not stopped[/] {failure}", markup=True)
    return failures


def cmd_stop_all(args: argparse.Namespace, config: LabConfig) -> int:
    return 1 if stop_all(_target(args, config), config) else 0


def _guard_time(at: str | None, config: LabConfig) -> dt.datetime | None:
    if at is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(at)
    except ValueError:
        raise UsageError(f"--at {at!r} is not a date and time (e.g. 2027-04-01T09:00)") from None
    # A time without zone is read in the course's guard time zone, as the after-hours window is.
    return moment if moment.tzinfo else moment.replace(tzinfo=config.guard.policy.zone())


def print_guard_report(report: Report) -> None:
    console.print(report.subject, markup=False)
    console.print(report.text(), markup=False, highlight=False)


def cmd_guard(args: argparse.Namespace, config: LabConfig) -> int:
    now = _guard_time(args.at, config)
    target = _target(args, config)
    function = config.names.guard.function
    try:
        report = run_deployed_guard(target.clients, function, now=now, dry_run=True if args.dry_run else None,
                                    poll_seconds=target.wait_delay)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            raise UsageError(f"LabGuard is not deployed: no function {function} (labctl deploy LabGuard)") from None
        raise
    console.print(f"guard function {function}: its code, run here with its deployed environment")
    print_guard_report(report)
    return 1 if report.of("failed") else 0


def cmd_audit(args: argparse.Namespace, config: LabConfig) -> int:
    target = _target(args, config)
    report = audit_course(target.clients, config.course_id, config.names.iam_path)
    print_audit(console, report)
    return 1 if report.billable else 0


def print_account_status(target: Target, config: LabConfig, as_json: bool = False) -> None:
    rows = classroom.account_status(target, config)
    if as_json:
        print(classroom.as_json(rows))
        return
    table = Table(title=f"{config.course_id}: each student's own account ({config.classroom.organizational_unit})",
                  title_justify="left")
    for column in ("student", "name", "account", "labs (stack set instance)"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.student, row.name, row.account, row.environment)
    console.print(table)


def print_status(target: Target, config: LabConfig, as_json: bool = False) -> list[classroom.StudentStatus]:
    rows = classroom.status(target, config)
    if as_json:
        print(classroom.as_json(rows))
        return rows
    table = Table(title=f"{config.course_id}: each student's environments on {target.label}", title_justify="left")
    for column in ("student", "name", "notebook", "state", "GPU instance", "state", "access keys"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.student, row.name, row.notebook, _coloured(row.notebook_state), row.instance,
                      _coloured(row.instance_state), row.access_keys)
    console.print(table)
    return rows


def _coloured(state: str) -> str:
    colour = {"InService": "green", "running": "green", "Stopped": "yellow", "stopped": "yellow"}.get(state, "red")
    return f"[{colour}]{state}[/]"


def print_class_status(target: Target, config: LabConfig, as_json: bool = False) -> None:
    """Each student's environments: in this account, or (account-per-student mode) in their own account."""
    if config.classroom.per_account:
        print_account_status(target, config, as_json)
    else:
        print_status(target, config, as_json)


def cmd_status(args: argparse.Namespace, config: LabConfig) -> int:
    print_class_status(_target(args, config), config, args.json)
    return 0


def print_plan(config: LabConfig, stacks: list[classroom.PlannedStack], capacities: list[Capacity],
               cost: CostEstimate) -> None:
    table = Table(title=f"plan: {len(config.stacks())} stacks for {len(config.students)} students "
                        f"({config.classroom.mode})", title_justify="left")
    for column in ("stack", "student", "resources", "what"):
        table.add_column(column, overflow="fold")
    for row in stacks:
        table.add_row(row.stack_name, row.student, str(row.resources), row.types)
    console.print(table)
    for capacity in capacities:
        fits = "unknown (not readable here)" if capacity.students is None else f"{capacity.students} more students"
        console.print(f"capacity: {capacity.description}: {fits}")
    console.print(f"estimated cost until {config.expires}: {cost.with_idle_stop_usd:.2f} USD with idle stop, "
                  f"{cost.without_idle_stop_usd:.2f} USD without (idle stop saves {cost.saved_usd:.2f} USD; "
                  "`labctl cost` itemizes)")


def provision(args: argparse.Namespace, config: LabConfig, target: Target) -> int:
    """Check the class against the account, show the plan, then deploy every student's stacks in parallel."""
    source = f"roster {config.classroom.roster}" if config.roster else f"{args.config}"
    console.print(f"{config.course_id}: {len(config.students)} students from {source}, {config.classroom.mode}, "
                  f"into {target.label}")
    capacities = classroom.check_capacity(config, target)
    ensure_bootstrapped(target, config, Path(args.config), echo)
    synthesize(target, Path(args.config), echo=lambda line: None)
    cost = classroom.class_cost(config, PriceTable.bundled())
    stacks = classroom.plan(config, ASSEMBLY)
    print_plan(config, stacks, capacities, cost)
    if args.dry_run:
        console.print("dry run: nothing deployed (run without --dry-run to provision)")
        if args.json:
            print(json.dumps({"stacks": classroom.as_dicts(stacks), "capacity": classroom.as_dicts(capacities),
                              "cost": cost.to_dict()}, indent=2, default=str))
        return 0
    if config.classroom.per_account:
        org = target.clients("organizations")
        accounts = ensure_student_accounts(org, str(config.classroom.organizational_unit), config.course_id,
                                           [(row.id, row.email, row.account) for row in config.roster], echo=echo)
        console.print(f"{len(accounts)} student accounts in {config.classroom.organizational_unit}")
    units = config.stacks()
    with _progress() as bar:
        task = bar.add_task("deploying stacks", total=len(units))

        def done(construct_id: str) -> None:
            bar.update(task, advance=1, description=f"deployed {construct_id}")

        def relay(line: str) -> None:
            bar.console.print(line, markup=False, highlight=False, soft_wrap=True)

        inventory = deploy(config, Path(args.config), target, list(LABS), echo=relay, progress=done,
                           synthesized=True)
    skipped = sorted({row.type for found in inventory.values() for row in found if row.state == SKIPPED})
    if skipped:
        console.print(f"[yellow]The emulator reported these types created without creating them:[/] "
                      f"{', '.join(skipped)}")
    print_class_status(target, config, args.json)
    dropped = sorted({unit.student for unit in dropped_out_stacks(target, config) if unit.student})
    if dropped:
        console.print(f"[yellow]still deployed for students no longer in the roster:[/] {', '.join(dropped)}; "
                      f"`labctl destroy --student {dropped[0]} --yes` archives their work and removes their stacks")
    return 0


def cmd_provision(args: argparse.Namespace, config: LabConfig) -> int:
    target = _target(args, config)
    if not args.json:
        return provision(args, config, target)
    # Scripts read stdout: the plan and progress go to stderr, the JSON (plan on a dry run, else status) to stdout.
    console.stderr = True
    try:
        return provision(args, config, target)
    finally:
        console.stderr = False


def cmd_handout(args: argparse.Namespace, config: LabConfig) -> int:
    target = _target(args, config)
    if config.expires < dt.date.today():
        raise UsageError(f"the course ended on {config.expires}; no new handouts")
    students = classroom.parse_students(args.students) or list(config.students)
    out = Path(args.out) if args.out else HANDOUT_ROOT / config.course_id
    made = classroom.handouts(target, config, students, out)
    if args.json:
        print(classroom.as_json(made))
        return 0
    for handout in made:
        echo(f"{handout.student}: {handout.path} (mode 0600); credentials: {handout.credentials}")
    echo("hand each student their own files privately (not by mail in plain text)")
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
    result = classroom.class_cost(config, prices)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return 0
    table = Table(title=f"{config.course_id}: estimated cost until {config.expires} ({result.weeks:.1f} weeks)",
                  title_justify="left")
    for column in COST_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in format_lines(result):
        table.add_row(*row)
    console.print(table)
    console.print("assumptions: " + "; ".join(result.assumptions), markup=False)
    return 0


def cmd_notebook(args: argparse.Namespace, config: LabConfig) -> int:
    target = _student_target(args, config)
    sm = target.clients("sagemaker")
    name = _deployed(deployed_notebooks(target, config), args.student, "notebook", "LabSageMaker")
    if args.action == "url":
        console.print(notebook.presigned_url(sm, name))
        return 0
    action: Callable[..., notebook.NotebookStatus] = {
        "start": notebook.start, "stop": notebook.stop, "status": notebook.status
    }[args.action]
    kwargs = {} if args.action == "status" else {"delay": target.wait_delay}
    state = action(sm, name, **kwargs)
    console.print(f"{state.name}: {state.status} ({state.instance_type})")
    return 0


def cmd_gpu(args: argparse.Namespace, config: LabConfig) -> int:
    target = _student_target(args, config)
    instance_id = _deployed(deployed_instances(target, config), args.student, "GPU instance", "LabDLAMI")
    ec2 = target.clients("ec2")
    if args.action == "connect":
        login = DLAMIS[config.dlami.ami_type].login_user
        console.print(instance.connect_command(instance.status(ec2, instance_id), region=config.region,
                                               login_user=login), markup=False)
        return 0
    action: Callable[..., instance.InstanceStatus] = {
        "start": instance.start, "stop": instance.stop, "terminate": instance.terminate, "status": instance.status
    }[args.action]
    kwargs = {} if args.action == "status" else {"delay": target.wait_delay}
    state = action(ec2, instance_id, **kwargs)
    console.print(f"{args.student}: {state.instance_id} is {state.state} ({state.instance_type})")
    return 0


def cmd_doctor(args: argparse.Namespace, config: LabConfig) -> int:
    target = _target(args, config)
    report = diagnose(target.clients("ec2"), target.clients("service-quotas"), instance_type=config.dlami.instance_type,
                      students=len(config.students), zone=config.dlami.availability_zone)
    quota = "unknown" if report.quota_vcpus is None else f"{report.quota_vcpus:.0f}"
    console.print(f"{report.instance_type} in {report.region}: offered in {', '.join(report.zones) or 'no zone'}; "
                  f"{len(config.students)} students need {report.needed_vcpus} vCPUs, quota {quota}")
    for problem in report.problems:
        console.print(f"[bold red]problem[/] {problem}")
    if report.ok:
        console.print("[bold green]ready[/]")
    return 0 if report.ok else 1


def cmd_local(args: argparse.Namespace) -> int:
    if args.action == "up":
        config = load_config(args.config)
        endpoint = emulator.start_detached(config.region, args.port)
        console.print(f"emulator running at {endpoint.url}; `labctl local env` prints the variables for cdk/aws")
    elif args.action == "down":
        console.print("emulator stopped" if emulator.stop_detached() else "no emulator was running")
    else:
        endpoint = emulator.read_state()
        if endpoint is None:
            raise UsageError("no emulator running: `labctl local up` starts one")
        for key, value in endpoint.env().items():
            print(f"export {key}={value}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse prints the whole usage block on a bad flag; labctl errors are one line, like every other."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="labctl", description="Provision and tear down ML course labs.")
    parser.add_argument("--config", default="lab.toml", help="course file (default: lab.toml)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_target(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--aws", action="store_true", help="act on the real AWS account of the config "
                       "(default: the local emulator from `labctl local up`)")
        return p

    p = sub.add_parser("demo", help="deploy, show, stop, destroy and audit in a fresh embedded emulator")
    p.add_argument("--archive", help="where to archive student buckets (default: .labkit/archive/...)")
    with_target(sub.add_parser("deploy", help="deploy lab stacks")).add_argument("labs", nargs="*")
    p = with_target(sub.add_parser("destroy", help="archive student data, delete lab stacks, audit (dry run "
                                   "unless --yes)"))
    p.add_argument("labs", nargs="*")
    p.add_argument("--student", action="append", metavar="ID",
                   help="only this student's own stacks (repeatable); also a student who left the roster")
    p.add_argument("--yes", action="store_true", help="really do it")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--archive", help="archive folder (default: .labkit/archive/<course>-<time>)")
    group.add_argument("--no-archive", action="store_true", help="delete student data without archiving it")
    p = with_target(sub.add_parser("teardown", help="end the course: archive student data, delete every lab and "
                                   "the guard, audit (dry run unless --yes and the course id)"))
    p.add_argument("--yes", action="store_true", help="really do it (then type the course id, or pass --confirm)")
    p.add_argument("--confirm", metavar="COURSE_ID", help="the course id, for scripts without a terminal")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--archive", help="archive folder (default: .labkit/archive/<course>-<time>)")
    group.add_argument("--no-archive", action="store_true", help="delete student data without archiving it")
    with_target(sub.add_parser("stop-all", help="stop every running notebook and GPU instance of the course now"))
    p = with_target(sub.add_parser("guard", help="run the deployed teardown guard's code here, now"))
    p.add_argument("action", choices=["run"])
    p.add_argument("--dry-run", action="store_true", help="report only, whatever guard.dry_run says")
    p.add_argument("--at", help="pretend it is this time (ISO 8601; without a zone: guard.timezone), "
                   "e.g. the day after expiry to preview the course's end")
    with_target(sub.add_parser("audit", help="list everything of the course still present, with estimated "
                               "USD/hour; exit 1 if billable"))
    p = with_target(sub.add_parser("provision", help="check the roster against the account, show the plan and "
                                   "cost, deploy every student's stacks in parallel, show their status"))
    p.add_argument("--dry-run", action="store_true", help="check and show the plan; deploy nothing")
    p.add_argument("--json", action="store_true", help="JSON on stdout (the plan with --dry-run, else each "
                   "student's status); everything else on stderr")
    with_target(sub.add_parser("status", help="each student's notebook, GPU instance and access keys")).add_argument(
        "--json", action="store_true")
    p = with_target(sub.add_parser("handout", help="a private file per student: notebook, GPU connect command, "
                                   "credentials profile (mode 0600)"))
    p.add_argument("students", nargs="*", help="students (default: every student)")
    p.add_argument("--out", help=f"folder (default: {HANDOUT_ROOT.relative_to(ROOT)}/<course>)")
    p.add_argument("--json", action="store_true")
    p = with_target(sub.add_parser("cost", help="estimated cost of the class until it expires, and what idle "
                                   "stop saves"))
    p.add_argument("--pricing", action="store_true", help="refresh prices from the AWS Price List API (with --aws)")
    p.add_argument("--json", action="store_true")
    p = with_target(sub.add_parser("notebook", help="start/stop/status/url of one student's notebook"))
    p.add_argument("action", choices=["start", "stop", "status", "url"])
    p.add_argument("student")
    p = with_target(sub.add_parser("gpu", help="start/stop/terminate/status/connect of one student's GPU instance"))
    p.add_argument("action", choices=["start", "stop", "terminate", "status", "connect"])
    p.add_argument("student")
    with_target(sub.add_parser("doctor", help="is the GPU type offered here, and does the vCPU quota fit the class?"))
    p = with_target(sub.add_parser("keys", help="access keys of the students' container users (LabContainers)"))
    p.add_argument("action", choices=["issue", "list", "deactivate", "delete"])
    p.add_argument("student", nargs="?", help="one student (default: every student)")
    p.add_argument("--out", help=f"folder for issued key files (default: {KEYS_ROOT.relative_to(ROOT)}/<course>)")
    p.add_argument("--csv", action="store_true", help="issue as CSV (spreadsheet-safe) instead of a credentials file")
    p = sub.add_parser("local", help="run the embedded emulator in the background")
    p.add_argument("action", choices=["up", "down", "env"])
    p.add_argument("--port", type=int, help="port for `up` (default: a free one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from labkit.demo import cmd_demo  # the demo builds on the commands here

            return cmd_demo(args)
        if args.command == "local":
            return cmd_local(args)
        allow_expired = args.command in {"destroy", "teardown", "stop-all", "guard", "audit", "status", "notebook",
                                         "gpu", "keys", "handout", "cost"}
        config = load_config(args.config, allow_expired=allow_expired)
        handler = {"deploy": cmd_deploy, "destroy": cmd_destroy, "teardown": cmd_teardown, "stop-all": cmd_stop_all,
                   "guard": cmd_guard, "audit": cmd_audit, "status": cmd_status, "notebook": cmd_notebook,
                   "gpu": cmd_gpu, "doctor": cmd_doctor, "keys": cmd_keys, "provision": cmd_provision,
                   "handout": cmd_handout, "cost": cmd_cost}[args.command]
        return handler(args, config)
    except (ConfigError, UsageError, CdkError, ArchiveError, notebook.NotebookError, instance.InstanceError,
            SettingsError, classroom.ClassroomError, PricingError, OrganizationError, RuntimeError) as exc:
        print(f"labctl: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (ConfigError, UsageError, classroom.ClassroomError)) else 1
    except (ClientError, BotoCoreError) as exc:
        print(f"labctl: AWS error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("labctl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
