"""Before a class: is the GPU type offered where the course deploys, and does the vCPU quota fit every student?

New accounts often have a GPU quota of 0 vCPUs, and some types are not offered in every zone; both make a
deploy fail after other resources were already created, so `labctl doctor` asks first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from course.catalog import INSTANCES, QUOTA_CODES


@dataclass
class DoctorReport:
    instance_type: str
    region: str
    zones: list[str]
    needed_vcpus: int
    quota_vcpus: float | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def offered_zones(ec2: Any, instance_type: str) -> list[str]:
    pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [instance_type]}]
    )
    return sorted(o["Location"] for page in pages for o in page["InstanceTypeOfferings"])


def vcpu_quota(quotas: Any, family: str) -> float | None:
    """The account's applied quota, or AWS's default when none was ever requested; None if unreadable."""
    code = QUOTA_CODES[family]
    try:
        return float(quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchResourceException":
            raise
    try:
        for page in quotas.get_paginator("list_aws_default_service_quotas").paginate(ServiceCode="ec2"):
            for quota in page["Quotas"]:
                if quota["QuotaCode"] == code:
                    return float(quota["Value"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchResourceException":
            raise
    return None


def diagnose(ec2: Any, quotas: Any, *, instance_type: str, students: int, zone: str | None) -> DoctorReport:
    spec = INSTANCES[instance_type]
    region = ec2.meta.region_name
    zones = offered_zones(ec2, instance_type)
    needed = spec.vcpus * students
    report = DoctorReport(instance_type, region, zones, needed, vcpu_quota(quotas, spec.quota_family))
    if not zones:
        report.problems.append(f"{instance_type} is not offered in {region}; pick another type or region")
    elif zone and zone not in zones:
        report.problems.append(f"{instance_type} is not offered in {zone}; offered in {', '.join(zones)}")
    if report.quota_vcpus is None:
        report.problems.append(f"could not read the {spec.quota_family} vCPU quota ({QUOTA_CODES[spec.quota_family]})")
    elif report.quota_vcpus < needed:
        report.problems.append(
            f"{students} x {instance_type} need {needed} vCPUs but the quota for running on-demand "
            f"{spec.quota_family} instances is {report.quota_vcpus:.0f}; request an increase in Service Quotas "
            f"({QUOTA_CODES[spec.quota_family]})"
        )
    return report
