"""Account capacity: quotas read from the account, unknown (never guessed) where the account cannot say."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import Stubber

from lab_scripts import quotas


def stubbed_quotas(sagemaker_quotas: list[dict[str, Any]] | None, ec2_value: float | None) -> tuple[Any, Stubber]:
    client = boto3.client("service-quotas", region_name="us-east-1")
    stubber = Stubber(client)
    if sagemaker_quotas is not None:
        stubber.add_response("list_service_quotas", {"Quotas": sagemaker_quotas}, {"ServiceCode": "sagemaker"})
    if ec2_value is not None:
        stubber.add_response("get_service_quota", {"Quota": {"Value": ec2_value}},
                             {"ServiceCode": "ec2", "QuotaCode": "L-DB2E81BA"})
    return client, stubber


def test_notebook_quota_counts_what_already_runs(aws: Any) -> None:
    role = aws("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    for name, kind in (("a", "ml.t3.medium"), ("b", "ml.t3.medium"), ("c", "ml.m5.xlarge")):
        aws("sagemaker").create_notebook_instance(NotebookInstanceName=name, InstanceType=kind, RoleArn=role)
    client, stubber = stubbed_quotas([{"QuotaName": "ml.t3.medium for notebook instance usage", "Value": 10.0}], None)
    with stubber:
        found = quotas.notebooks(client, aws("sagemaker"), "ml.t3.medium")
    assert found == quotas.Capacity("SageMaker ml.t3.medium notebook instances (quota 10, 2 in use)", 8)


def test_gpu_quota_in_vcpus_per_instance() -> None:
    client, stubber = stubbed_quotas(None, 16.0)
    with stubber:
        found = quotas.gpu_vcpus(client, "g4dn.xlarge")
    assert found.students == 4 and "quota 16" in found.description


def test_a_zero_gpu_quota_fits_nobody() -> None:
    client, stubber = stubbed_quotas(None, 0.0)
    with stubber:
        assert quotas.gpu_vcpus(client, "g5.xlarge").students == 0


def test_unreadable_quotas_are_unknown_not_zero(aws: Any) -> None:
    client = boto3.client("service-quotas", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("list_service_quotas", "AccessDeniedException", "not allowed")
    with stubber:
        assert quotas.notebooks(client, aws("sagemaker"), "ml.t3.medium").students is None


def test_stacks_and_users_from_moto(aws: Any) -> None:
    aws("cloudformation").create_stack(StackName="other", TemplateBody='{"Resources": {"Q": {"Type": '
                                       '"AWS::SQS::Queue"}}}')
    stacks = quotas.stacks(aws("cloudformation"), per_student=2)
    assert stacks.students == 999 and "default quota 2000, 1 in use" in stacks.description
    aws("iam").create_user(UserName="someone")
    assert quotas.iam_users(aws("iam"), per_student=1).students == 4999
