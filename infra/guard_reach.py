"""Account-per-student mode: the guard's reach into a student's account, a role that can stop and do nothing else.

`OrganizationAccountAccessRole` is an administrator of the account; a scheduled function holding it would be too.
So the stack set deploys this role in every account: the class guard's role (and only it) may assume it, and it
finds the course's machines, reads their activity and stops the course-tagged ones, exactly the guard's own
stop statements (infra.teardown_guard.stop_statements). Caps, keys and stack deletion stay out of its reach.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from course.naming import CourseNames
from infra.nag import acknowledge, acknowledge_wildcard_resource
from infra.teardown_guard import stop_statements
from lab_scripts.guard_fn.handler import NOTEBOOK_LOG_GROUP


class GuardStopRole(Construct):
    def __init__(self, scope: Construct, id_: str, *, names: CourseNames, class_account: str) -> None:
        super().__init__(scope, id_)
        stack, guard = Stack.of(self), names.guard
        guard_role = f"arn:{stack.partition}:iam::{class_account}:role{names.iam_path}{guard.role}"
        self.role = iam.Role(
            self, "Role", role_name=guard.stop_role, path=names.iam_path,
            description=f"labkit {names.course}: the class guard stops idle and after-hours machines here",
            # The account, narrowed to the guard's role by ARN: a trust naming the role itself would fail while the
            # class's LabGuard is not deployed yet, and would break if it were ever re-created.
            assumed_by=iam.AccountPrincipal(class_account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": guard_role}}),
        )
        notebooks = stack.format_arn(service="sagemaker", resource="notebook-instance",
                                     resource_name=f"{names.course}-*")
        logs = stack.format_arn(service="logs", resource="log-group", resource_name=NOTEBOOK_LOG_GROUP,
                                arn_format=ArnFormat.COLON_RESOURCE_NAME)
        for statement in stop_statements(names.course, notebooks, logs):
            self.role.add_to_principal_policy(statement)
        policy = self.role.node.find_child("DefaultPolicy")
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]",
                    "List/Describe/GetMetricStatistics have no resource type (IAM accepts only '*'); "
                    "ec2:StopInstances on '*' is conditioned on the course tag.")
        acknowledge_wildcard_resource(policy, notebooks, "The student's notebook is '<course>-student'; stopping "
                                      "also requires the course tag.")
