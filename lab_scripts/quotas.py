"""How many students one account still holds, per quota that a class provision consumes.

Read from the account where the service says (Service Quotas, IAM's account summary, CloudFormation's account
limits); where it cannot (an emulator, a missing permission) the capacity is unknown and reported as such,
never guessed. A roster that does not fit is refused before anything is created: a half-provisioned class is
worse than none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from lab_scripts.doctor import vcpu_quota
from lab_scripts.inventory import live_stack_names
from course.catalog import INSTANCES

# CloudFormation's default stacks-per-account-and-region quota, used when DescribeAccountLimits cannot answer.
DEFAULT_STACK_LIMIT = 2000
# Emulators (an HTTP 500, or NotImplementedError in-process) and restricted roles answer these with errors;
# capacity is then unknown, not zero.
UNANSWERED = (ClientError, BotoCoreError, ResponseParserError, KeyError, NotImplementedError)


@dataclass(frozen=True)
class Capacity:
    """One quota: what it is, and how many more students fit it (None: the account did not say)."""

    description: str
    students: int | None


def _fits(limit: float, used: float, per_student: float) -> int:
    return max(0, int((limit - used) // per_student)) if per_student else 10**9


def stacks(cfn: Any, per_student: int) -> Capacity:
    try:
        limits = {row["Name"]: row["Value"] for row in cfn.describe_account_limits()["AccountLimits"]}
        limit, source = int(limits["StackLimit"]), "quota"
    except UNANSWERED:
        limit, source = DEFAULT_STACK_LIMIT, "default quota"
    used = len(live_stack_names(cfn))
    return Capacity(f"CloudFormation stacks ({source} {limit}, {used} in use, {per_student} per student)",
                    _fits(limit, used, per_student))


def iam_users(iam: Any, per_student: int) -> Capacity:
    try:
        summary = iam.get_account_summary()["SummaryMap"]
        limit, used = summary["UsersQuota"], summary["Users"]
    except UNANSWERED:
        return Capacity("IAM users (account summary unreadable)", None)
    return Capacity(f"IAM users (quota {limit}, {used} in use)", _fits(limit, used, per_student))


def notebooks(quotas: Any, sagemaker: Any, instance_type: str) -> Capacity:
    """SageMaker's per-type notebook quota ("ml.t3.medium for notebook instance usage"), minus what runs now."""
    name = f"{instance_type} for notebook instance usage"
    limit = None
    try:
        for method in ("list_service_quotas", "list_aws_default_service_quotas"):
            for page in quotas.get_paginator(method).paginate(ServiceCode="sagemaker"):
                limit = next((q["Value"] for q in page["Quotas"] if q["QuotaName"] == name), limit)
            if limit is not None:
                break
    except UNANSWERED:
        limit = None
    if limit is None:
        return Capacity(f"SageMaker {instance_type} notebook instances (quota unreadable)", None)
    pages = sagemaker.get_paginator("list_notebook_instances").paginate()
    used = sum(1 for page in pages for row in page["NotebookInstances"] if row["InstanceType"] == instance_type
               and row["NotebookInstanceStatus"] != "Deleting")
    return Capacity(f"SageMaker {instance_type} notebook instances (quota {limit:.0f}, {used} in use)",
                    _fits(limit, used, 1))


def gpu_vcpus(quotas: Any, instance_type: str) -> Capacity:
    """Running on-demand G/P instances are capped in vCPUs; new accounts often have 0."""
    spec = INSTANCES[instance_type]
    try:
        limit = vcpu_quota(quotas, spec.quota_family)
    except UNANSWERED:
        limit = None
    if limit is None:
        return Capacity(f"{spec.quota_family} instance vCPUs for {instance_type} (quota unreadable)", None)
    return Capacity(f"{spec.quota_family} instance vCPUs (quota {limit:.0f}, {spec.vcpus} per {instance_type})",
                    _fits(limit, 0, spec.vcpus))


def account_capacity(clients: Any, *, notebook_type: str | None, gpu_type: str | None, stacks_per_student: int,
                     users_per_student: int) -> list[Capacity]:
    """Every quota a single-account class consumes per student."""
    found = [stacks(clients("cloudformation"), stacks_per_student)]
    if users_per_student:
        found.append(iam_users(clients("iam"), users_per_student))
    if notebook_type:
        found.append(notebooks(clients("service-quotas"), clients("sagemaker"), notebook_type))
    if gpu_type:
        found.append(gpu_vcpus(clients("service-quotas"), gpu_type))
    return found
