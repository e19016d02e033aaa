"""Account-per-student mode end to end in the embedded emulator (README, "Account-per-student mode"): 3 students'
accounts created and moved into the class OU, LabClassroom deployed through the CDK CLI, each student's labs in
their own account, a fourth student joining later, the class guard stopping their machines after hours through the
stop-only role in each account, then teardown with archive and the audit of every account."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from course.config import load_config
from lab_scripts import buckets
from lab_scripts.organization import ensure_ou
from lab_scripts.guard_fn.handler import DONE, STOP_INSTANCE, STOP_NOTEBOOK
from labkit.demo_accounts import EXAMPLE, demo_course, guard_after_hours, show_accounts, students_work
from labkit.emulator import Emulator
from labkit.ops.accounts import deployed_accounts
from labkit.ops.provision import plan, prepare, provision
from labkit.ops.status import account_status
from labkit.ops.teardown import teardown
from labkit.target import emulator_target

pytestmark = pytest.mark.emulator


def test_three_accounts_then_a_late_one_get_the_labs_and_teardown_leaves_nothing(tmp_path: Path) -> None:
    source = load_config(EXAMPLE, allow_expired=True)
    with Emulator(source.region) as endpoint:
        running = emulator_target(endpoint)
        # CloudFormation validation of the app is tested once (tests/stacks); cdk-nag still gates this synth.
        target = dataclasses.replace(running, env={**running.env, "CDK_VALIDATION": "false"})
        org = target.clients("organizations")
        org.create_organization(FeatureSet="ALL")
        ou = ensure_ou(org, "ml102-students")
        config, path = demo_course(source, ou, 3, tmp_path / "course")
        provision(config, path, target, prepare(config, path, target))
        rows = show_accounts(target, config)  # raises unless every account's labs are CURRENT with their machines
        accounts = {row.student: row.account for row in rows}
        assert len(set(accounts.values()) | {config.account}) == 4

        deployed = deployed_accounts(target, config)
        for account, found in deployed.items():
            stacks = found.target.clients("cloudformation").describe_stacks()["Stacks"]
            assert [s["StackName"].startswith("StackSet-ml102-LabStudent-") for s in stacks] == [True]
            assert found.target.clients("sts").get_caller_identity()["Account"] == account
        assert target.clients("sagemaker").list_notebook_instances()["NotebookInstances"] == []  # none in the class's
        written = students_work(target, config)

        # dana joins: provision again creates her account and moves it into the OU; no stack is redeployed.
        config, path = demo_course(source, ou, 4, tmp_path / "course")
        late = provision(config, path, target, plan(config, target))
        assert late.deployed == []
        rows = show_accounts(target, config)
        assert {row.student for row in rows} == {"alice", "bob", "chen", "dana"}

        # The class guard, after hours, stops every student's notebook and GPU in their own account.
        report = guard_after_hours(target, config)
        stopped = {(action.kind, action.account) for action in report.of(DONE)}
        assert stopped == {(kind, row.account) for row in rows for kind in (STOP_NOTEBOOK, STOP_INSTANCE)}
        assert {(row.notebook_state, row.instance_state) for row in account_status(target, config)} <= {
            ("Stopped", "stopped"), ("Stopping", "stopping"), ("Stopped", "stopping"), ("Stopping", "stopped")}

        result = teardown(config, path, target, tmp_path / "archive")
        assert result.audit.clean, result.audit.leftovers
        assert set(result.student_accounts) == {row.account for row in rows}
        for key, digest in written.items():
            bucket, name = key.split("/", 1)
            data = buckets.read_archived(tmp_path / "archive" / bucket / "manifest.json", name)
            assert hashlib.sha256(data).hexdigest() == digest
        for found in deployed.values():
            assert found.target.clients("cloudformation").describe_stacks()["Stacks"] == []
        summaries = target.clients("cloudformation").list_stack_sets()["Summaries"]
        assert [s["Status"] for s in summaries] == ["DELETED"]
