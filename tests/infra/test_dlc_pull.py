"""The shared DLC pull policy: the same statements for any principal, and a role can reuse it nag-clean."""

from __future__ import annotations

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks

from infra.dlc_pull import DLC_PULL_POLICY, acknowledge_registry_login, dlc_pull_document, dlc_repository_arns
from lab_scripts.dlc import DlcError
from tests.conftest import cdk_context


def stack(region: str) -> Stack:
    # cdk.json's flags make the partition a literal, as in the lab stacks.
    return Stack(App(context=cdk_context()), "Probe", env=Environment(account="123456789012", region=region))


@pytest.mark.parametrize(("region", "account"), [("us-west-2", "763104351884"), ("af-south-1", "626614931356"),
                                                 ("me-central-1", "914824155844")])
def test_repository_arns_use_the_regions_registry_account(region: str, account: str) -> None:
    probe = stack(region)
    arns = [probe.resolve(arn) for arn in dlc_repository_arns(probe, region)]
    assert arns == [f"arn:aws:ecr:{region}:{account}:repository/{name}"
                    for name in ("mxnet-training", "pytorch-training", "tensorflow-training")]


def test_region_without_dlc_registry_is_refused() -> None:
    with pytest.raises(DlcError, match="'ca-west-1' has no Deep Learning Containers registry"):
        dlc_pull_document(stack("ca-west-1"), "ca-west-1")


def test_an_instance_role_reuses_the_policy_without_findings() -> None:
    """How the DLAMI lab is meant to use it: the same document inline on its instance role."""
    probe = stack("us-east-1")
    role = iam.Role(probe, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
                    inline_policies={DLC_PULL_POLICY: dlc_pull_document(probe, "us-east-1")})
    checks = AwsSolutionsChecks()
    assert [v.rule_name for v in checks.validate_scope(probe).violations] == ["AwsSolutions-IAM5[Resource::*]"]
    acknowledge_registry_login(role)
    assert AwsSolutionsChecks().validate_scope(probe).violations == []


def test_a_region_token_looks_the_registry_up_at_deploy_time() -> None:
    """A stack set's template has no region: every region's registry goes into one mapping of the stack."""
    from aws_cdk import Aws
    from aws_cdk.assertions import Template

    from lab_scripts.dlc import DLC_REGISTRIES

    probe = Stack(App(context=cdk_context(), builtin_cloud_formation_validation=False), "Probe")
    twice = dlc_repository_arns(probe, Aws.REGION) + dlc_repository_arns(probe, Aws.REGION)  # one mapping for both
    arns = [probe.resolve(arn) for arn in twice]
    lookup = {"Fn::FindInMap": ["DlcRegistries", {"Ref": "AWS::Region"}, "Account"]}
    assert all(lookup in arn["Fn::Join"][1] for arn in arns)
    mappings = Template.from_stack(probe).to_json()["Mappings"]
    assert mappings == {"DlcRegistries": {region: {"Account": account} for region, account in DLC_REGISTRIES.items()}}
