"""Account-per-student mode: acting in each student's own account, from the class account.

The stack set's instances say which accounts hold the labs and which stack there holds them; each account is
reached through `OrganizationAccountAccessRole` (lab_scripts.organization.account_clients). Status, teardown and
the audit read a student's notebook, bucket and GPU instance from that stack, never by guessing names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from course.config import LabConfig
from course.naming import STUDENT_ACCOUNT
from lab_scripts.organization import account_clients, instance_stacks
from labkit.deployed import physical_of, stack_resources
from labkit.target import Target


@dataclass(frozen=True)
class StudentAccount:
    """One student account: a target acting in it, and the stack set's stack there."""

    account: str
    target: Target
    stack: str

    def resources(self) -> list[dict[str, Any]]:
        return stack_resources(self.target, self.stack) or []


def notebook_names(resources: list[dict[str, Any]]) -> list[str]:
    """The notebooks of a stack's resources; CloudFormation gives their ARNs, SageMaker wants names."""
    return [arn.rsplit("/", 1)[-1] for arn in physical_of(resources, "AWS::SageMaker::NotebookInstance")]


def account_target(target: Target, config: LabConfig, account: str) -> Target:
    """`target`, acting in `account` through the role Organizations creates there."""
    clients = account_clients(target.clients("sts"), account, region=config.region,
                              endpoint_url=target.env.get("AWS_ENDPOINT_URL"))
    return dataclasses.replace(target, label=f"account {account}", clients=clients)


def deployed_accounts(target: Target, config: LabConfig,
                      instances: list[dict[str, Any]] | None = None) -> dict[str, StudentAccount]:
    """{account: StudentAccount} for every account the class stack set has deployed to, in the course's region
    (from `instances` when the caller has listed the stack set's instances already)."""
    stacks = instance_stacks(target.clients("cloudformation"), config.names.stack(STUDENT_ACCOUNT),
                             region=config.region, instances=instances)
    return {account: StudentAccount(account, account_target(target, config, account), stack)
            for account, stack in sorted(stacks.items())}
