"""`labctl doctor` logic: offerings from moto's real per-zone data, quotas stubbed (moto knows only VPC quotas)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import Stubber

from lab_scripts.doctor import diagnose


def quotas_with(value: float | None) -> tuple[Any, Stubber]:
    client = boto3.client("service-quotas", region_name="us-east-1")
    stub = Stubber(client)
    if value is None:
        stub.add_client_error("get_service_quota", "NoSuchResourceException")
        stub.add_client_error("list_aws_default_service_quotas", "NoSuchResourceException")
    else:
        stub.add_response("get_service_quota", {"Quota": {"QuotaCode": "L-DB2E81BA", "Value": value}},
                          {"ServiceCode": "ec2", "QuotaCode": "L-DB2E81BA"})
    stub.activate()
    return client, stub


def test_enough_quota_in_an_offering_region(aws: Any) -> None:
    quotas, _ = quotas_with(64)
    report = diagnose(aws("ec2"), quotas, instance_type="g4dn.xlarge", students=10, zone="us-east-1a")
    assert report.ok, report.problems
    assert "us-east-1a" in report.zones and report.needed_vcpus == 40


def test_quota_too_small_for_the_class(aws: Any) -> None:
    quotas, _ = quotas_with(8)
    report = diagnose(aws("ec2"), quotas, instance_type="g5.xlarge", students=3, zone=None)
    assert report.problems == [
        "3 x g5.xlarge need 12 vCPUs but the quota for running on-demand G instances is 8; request an increase "
        "in Service Quotas (L-DB2E81BA)"]


def test_type_not_offered_in_the_region(aws: Any) -> None:
    # moto's offering data mirror AWS: P3 is being retired and is not offered in us-east-1 any more.
    quotas, _ = quotas_with(None)
    report = diagnose(aws("ec2"), quotas, instance_type="p3.2xlarge", students=1, zone=None)
    assert "p3.2xlarge is not offered in us-east-1; pick another type or region" in report.problems
    assert any("could not read the P vCPU quota" in p for p in report.problems)


def test_zone_without_the_type(aws: Any) -> None:
    quotas, _ = quotas_with(64)
    report = diagnose(aws("ec2"), quotas, instance_type="g4dn.xlarge", students=1, zone="us-east-1e")
    assert report.problems and report.problems[0].startswith("g4dn.xlarge is not offered in us-east-1e; offered in")
