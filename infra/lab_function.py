"""A labkit Python Lambda function: newest runtime, arm64, its own log group, and an asset without caches.

Shared by every function of the labs, so each gets the same habits: the log group is created by the stack
(otherwise /aws/lambda/<fn> appears at first invoke, outside the stack, never expires and survives destroy),
and the asset excludes caches and tests (otherwise running pytest changes its hash and forces a redeploy).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

ASSET_EXCLUDE = ["__pycache__", "*.pyc", "tests", ".pytest_cache"]
LOG_RETENTION = logs.RetentionDays.TWO_WEEKS


@dataclass(frozen=True)
class FunctionProps:
    function_name: str
    log_group_name: str
    description: str
    code_dir: Path
    role: iam.Role
    environment: dict[str, str]
    timeout: Duration
    memory_size: int = 256
    dead_letter_queue: sqs.IQueue | None = None
    # 1 where two overlapping runs could act on the same resources.
    reserved_concurrent_executions: int | None = None


def lab_function(scope: Construct, props: FunctionProps) -> tuple[lambda_.Function, logs.LogGroup]:
    """Add children `Logs` and `Function` to `scope`, and let the role write to exactly that log group.

    A function rather than a construct, so the logical ids of functions already deployed stay the same.
    """
    log_group = logs.LogGroup(scope, "Logs", log_group_name=props.log_group_name, retention=LOG_RETENTION,
                              removal_policy=RemovalPolicy.DESTROY)
    props.role.add_to_principal_policy(iam.PolicyStatement(
        sid="OwnLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn],
    ))
    function = lambda_.Function(
        scope,
        "Function",
        function_name=props.function_name,
        description=props.description,
        # cdk-nag L1 requires the newest runtime the installed aws-cdk-lib knows.
        runtime=lambda_.Runtime.PYTHON_3_14,
        architecture=lambda_.Architecture.ARM_64,
        handler="handler.lambda_handler",
        code=lambda_.Code.from_asset(str(props.code_dir), exclude=ASSET_EXCLUDE),
        role=props.role,
        memory_size=props.memory_size,
        timeout=props.timeout,
        environment=props.environment,
        log_group=log_group,
        dead_letter_queue=props.dead_letter_queue,
        reserved_concurrent_executions=props.reserved_concurrent_executions,
    )
    _depend_on_policy_only(function, props.role)
    return function, log_group


def _depend_on_policy_only(function: lambda_.Function, role: iam.Role) -> None:
    """CDK makes the function depend on the whole role construct: the role and its default policy. The role is
    already ordered by the function's `Role` GetAtt, so its DependsOn is redundant (cfn-lint W3005); the policy
    must stay, or the function could be created (and invoked) before it may write its logs."""
    resource = function.node.default_child
    policy = role.node.try_find_child("DefaultPolicy")
    assert isinstance(resource, CfnResource) and isinstance(policy, iam.Policy)
    policy_resource = policy.node.default_child
    assert isinstance(policy_resource, CfnResource)
    resource.add_override("DependsOn", [Stack.of(function).get_logical_id(policy_resource)])
