"""The one pull-only policy for AWS Deep Learning Containers, shared by every principal that pulls them.

The course text attaches `AmazonEC2ContainerRegistryFullAccess`, which is `ecr:*` on every repository of
every account: push, delete and repository policy changes included. Pulling needs only a registry login
and two read actions on the repositories the course uses, in the DLC registry account of the region.
Use it for the lab users' group (LabContainers) and for instance roles (DLAMI), e.g.
`iam.Role(..., inline_policies={DLC_PULL_POLICY: dlc_pull_document(scope, region)})` followed by
`acknowledge_registry_login(role)`.
"""

from __future__ import annotations

from aws_cdk import CfnMapping, Stack, Token
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from infra.nag import acknowledge
from lab_scripts.dlc import DLC_REGISTRIES, REPOSITORIES, registry_account

DLC_PULL_POLICY = "dlc-pull"
# docker pull calls BatchGetImage for the manifest and GetDownloadUrlForLayer per layer; the third read
# action, BatchCheckLayerAvailability, is what docker push uses and is left out.
PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
REGISTRY_MAPPING = "DlcRegistries"


def dlc_registry_account(scope: Construct, region: str) -> str:
    """The DLC registry account of `region`. A region token (a stack set's template, deployed wherever it is
    sent) looks it up at deploy time in a mapping of every region with a registry."""
    if not Token.is_unresolved(region):
        return registry_account(region)
    stack = Stack.of(scope)
    mapping = stack.node.try_find_child(REGISTRY_MAPPING)
    if not isinstance(mapping, CfnMapping):
        mapping = CfnMapping(stack, REGISTRY_MAPPING, mapping={
            name: {"Account": account} for name, account in sorted(DLC_REGISTRIES.items())})
    return mapping.find_in_map(region, "Account")


def dlc_repository_arns(scope: Construct, region: str) -> list[str]:
    """ARNs of the course's DLC repositories in the registry account of `region`."""
    stack = Stack.of(scope)
    account = dlc_registry_account(scope, region)
    return [
        stack.format_arn(service="ecr", region=region, account=account, resource="repository", resource_name=name)
        for name in REPOSITORIES
    ]


def dlc_pull_statements(scope: Construct, region: str) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(sid="RegistryLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        iam.PolicyStatement(
            sid="PullDeepLearningContainers", actions=list(PULL_ACTIONS), resources=dlc_repository_arns(scope, region)
        ),
    ]


def dlc_pull_document(scope: Construct, region: str) -> iam.PolicyDocument:
    return iam.PolicyDocument(statements=dlc_pull_statements(scope, region))


def acknowledge_registry_login(holder: IConstruct) -> None:
    """The one wildcard of the pull policy, acknowledged on the principal that holds it."""
    acknowledge(
        holder,
        "AwsSolutions-IAM5[Resource::*]",
        "ecr:GetAuthorizationToken has no resource-level permissions in IAM: AWS accepts only '*' for it. "
        "The token it returns allows nothing by itself; what can be pulled is limited by the repository-scoped "
        "statement next to it.",
    )
