"""Account-per-student mode: one student-environment template, deployed to every account of the class's OU.

The template is synthesized once, for no student in particular, and the stack set targets an Organizations
OU: students are accounts in that OU, data in Organizations and not in this template. So synthesis costs the
same for 5 students or 500, and a student added to the OU gets their labs without a synth or a deploy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_cloudformation as cfn
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from course.naming import check

CALL_AS = ("SELF", "DELEGATED_ADMIN")
# What CloudFormation accepts in DeploymentTargets.OrganizationalUnitIds (an OU, or the root).
OU_ID = re.compile(r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$")


@dataclass(frozen=True, kw_only=True)
class StudentAccountsProps:
    """Deliberately no field for students or account ids: the OU is the class list."""

    stack_set_name: str
    template_path: str
    organizational_unit_ids: Sequence[str]
    regions: Sequence[str]
    max_concurrent_percentage: int
    failure_tolerance_percentage: int
    call_as: str = "SELF"
    description: str

    def __post_init__(self) -> None:
        check("CloudFormation stack", self.stack_set_name)
        if not self.organizational_unit_ids or not all(OU_ID.match(ou) for ou in self.organizational_unit_ids):
            raise ValueError(f"stack set {self.stack_set_name} needs OU ids like ou-ab12-cd345678, "
                             f"got {list(self.organizational_unit_ids)}")
        if not self.regions:
            raise ValueError(f"stack set {self.stack_set_name} needs at least one region")
        if self.call_as not in CALL_AS:
            raise ValueError(f"call_as must be one of {', '.join(CALL_AS)}, got {self.call_as!r}")
        # CloudFormation takes 1-100 for concurrency and 0-100 for tolerance; 0 stops at the first failure.
        if not 1 <= self.max_concurrent_percentage <= 100:
            raise ValueError(f"max_concurrent_percentage must be 1-100, got {self.max_concurrent_percentage}")
        if not 0 <= self.failure_tolerance_percentage <= 100:
            raise ValueError(f"failure_tolerance_percentage must be 0-100, got {self.failure_tolerance_percentage}")


class StudentAccountsStackSet(Construct):
    """A SERVICE_MANAGED stack set that follows the OU: accounts joining get the labs, accounts leaving lose them."""

    def __init__(self, scope: Construct, id_: str, *, props: StudentAccountsProps) -> None:
        super().__init__(scope, id_)
        # StackSets read the template from S3; the asset puts it in the bootstrap bucket of this account.
        self.template = s3_assets.Asset(self, "Template", path=props.template_path)
        self.stack_set = cfn.CfnStackSet(
            self,
            "StackSet",
            stack_set_name=props.stack_set_name,
            description=props.description,
            permission_model="SERVICE_MANAGED",
            call_as=props.call_as,
            # Retaining stacks of an account that leaves the OU would leave notebooks and GPUs billing
            # in an account labkit no longer manages.
            auto_deployment=cfn.CfnStackSet.AutoDeploymentProperty(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            # The student template names its IAM roles (per-course IAM path, predictable ARNs).
            capabilities=["CAPABILITY_NAMED_IAM"],
            operation_preferences=cfn.CfnStackSet.OperationPreferencesProperty(
                max_concurrent_percentage=props.max_concurrent_percentage,
                failure_tolerance_percentage=props.failure_tolerance_percentage,
                region_concurrency_type="PARALLEL",
            ),
            # Managed execution queues conflicting operations instead of failing them (e.g. an account
            # joining the OU while an update rolls out). A plain dict: the property is typed `Any`, so CDK
            # would render ManagedExecutionProperty(active=True) as {"active": true}, not the key CloudFormation reads.
            managed_execution={"Active": True},
            stack_instances_group=[
                cfn.CfnStackSet.StackInstancesProperty(
                    deployment_targets=cfn.CfnStackSet.DeploymentTargetsProperty(
                        organizational_unit_ids=list(props.organizational_unit_ids)
                    ),
                    regions=list(props.regions),
                )
            ],
            template_url=self.template.http_url,
        )
