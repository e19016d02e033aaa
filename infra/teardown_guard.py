"""LabGuard: a scheduled function that enforces "stop it, or pay for it", ends the course on its expiry date,
reports what it did, and a class budget that warns before the money is gone.

Who may delete what is split in two. The function may only *ask* CloudFormation to delete the course's lab
stacks (tag-conditioned, never LabGuard itself) and pass it the teardown role. Only CloudFormation may assume
that role, and it may delete only the course's resources (by name, IAM path or course tag) with the delete
permissions each resource type's provider schema lists. So the function cannot delete a single resource by
itself, and a stack deleted through it cannot reach past the course. A permission the role lacks makes a
resource fail to delete; the guard then keeps it, reports it, and `labctl teardown` removes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any
from pathlib import Path

from aws_cdk import ArnFormat, CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.lab_function import FunctionProps, lab_function
from infra.nag import acknowledge, acknowledge_wildcard_resource
from lab_scripts.guard_fn import handler
from course.layout import CLASS_LABS, LABS, PER_STUDENT_LABS
from course.naming import TAG_COURSE, CourseNames

HANDLER_DIR = Path(handler.__file__).parent
# Long enough to wait for a class's stacks to delete (the handler polls up to 10 minutes); the Lambda maximum.
TIMEOUT = Duration.minutes(15)
# AWS Budgets alert thresholds in percent of the monthly budget: (ACTUAL | FORECASTED, percent).
BUDGET_ALERTS = (("ACTUAL", 50), ("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100))

# What CloudFormation needs to delete each resource type the lab stacks hold: `handlers.delete.permissions` of
# each type's resource provider schema (tests compare this table with the schemas cfn-lint ships, and check that
# every type in the guarded templates is listed). kms:RetireGrant of AWS::ECR::Repository is left out: the
# class repository is encrypted with AES-256, not KMS.
DELETE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "AWS::S3::Bucket": ("s3:DeleteBucket", "s3:ListBucket"),
    "AWS::S3::BucketPolicy": ("s3:GetBucketPolicy", "s3:DeleteBucketPolicy"),
    "AWS::SQS::Queue": ("sqs:DeleteQueue", "sqs:GetQueueAttributes"),
    "AWS::SQS::QueuePolicy": ("sqs:SetQueueAttributes",),
    "AWS::Logs::LogGroup": ("logs:DescribeLogGroups", "logs:DeleteLogGroup", "logs:DeleteDataProtectionPolicy"),
    "AWS::IAM::Role": ("iam:DeleteRole", "iam:DetachRolePolicy", "iam:DeleteRolePolicy", "iam:GetRole",
                       "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:TagRole", "iam:UntagRole"),
    "AWS::IAM::Policy": ("iam:DeleteRolePolicy", "iam:DeleteUserPolicy", "iam:DeleteGroupPolicy"),
    "AWS::IAM::InstanceProfile": ("iam:GetInstanceProfile", "iam:RemoveRoleFromInstanceProfile",
                                  "iam:DeleteInstanceProfile"),
    "AWS::IAM::Group": ("iam:GetGroup", "iam:DeleteGroup", "iam:ListAttachedGroupPolicies", "iam:ListGroupPolicies",
                        "iam:DetachGroupPolicy", "iam:DeleteGroupPolicy", "iam:GetGroupPolicy"),
    "AWS::IAM::User": ("iam:DeleteAccessKey", "iam:RemoveUserFromGroup", "iam:DeleteUserPolicy", "iam:DeleteUser",
                       "iam:DetachUserPolicy", "iam:DeleteLoginProfile", "iam:ListAccessKeys", "iam:GetUserPolicy",
                       "iam:ListGroupsForUser", "iam:ListAttachedUserPolicies", "iam:ListUserPolicies",
                       "iam:GetUser", "iam:GetLoginProfile"),
    "AWS::Lambda::Function": ("lambda:DeleteFunction", "lambda:GetFunction", "ec2:DescribeNetworkInterfaces"),
    "AWS::Lambda::Permission": ("lambda:RemovePermission",),
    "AWS::SageMaker::NotebookInstanceLifecycleConfig": ("sagemaker:DeleteNotebookInstanceLifecycleConfig",),
    "AWS::SageMaker::NotebookInstance": ("ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission",
                                         "sagemaker:DeleteNotebookInstance", "sagemaker:DescribeNotebookInstance",
                                         "sagemaker:StopNotebookInstance"),
    "AWS::EC2::VPC": ("ec2:DeleteVpc", "ec2:DescribeVpcs"),
    "AWS::EC2::InternetGateway": ("ec2:DeleteInternetGateway", "ec2:DescribeInternetGateways"),
    "AWS::EC2::VPCGatewayAttachment": ("ec2:DetachInternetGateway", "ec2:DetachVpnGateway",
                                       "ec2:DescribeInternetGateways", "ec2:DescribeVpnGateways"),
    "AWS::EC2::Subnet": ("ec2:DescribeSubnets", "ec2:DeleteSubnet"),
    "AWS::EC2::RouteTable": ("ec2:DescribeRouteTables", "ec2:DeleteRouteTable"),
    "AWS::EC2::Route": ("ec2:DeleteRoute", "ec2:DescribeRouteTables"),
    "AWS::EC2::SubnetRouteTableAssociation": ("ec2:DisassociateRouteTable", "ec2:DescribeSubnets",
                                              "ec2:DescribeRouteTables"),
    "AWS::EC2::SecurityGroup": ("ec2:DescribeSecurityGroups", "ec2:DeleteSecurityGroup", "ec2:DescribeInstances"),
    "AWS::EC2::Instance": ("ec2:DescribeInstances", "ec2:TerminateInstances", "ec2:DescribeNetworkInterfaces",
                           "ec2:DescribeVolumes", "ec2:DescribeInstanceAttribute",
                           "ec2:DescribeInstanceCreditSpecifications", "ec2:DescribeLaunchTemplates",
                           "ssm:DescribeAssociation", "ssm:ListAssociations"),
    "AWS::CloudWatch::Alarm": ("cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"),
    "AWS::ECR::Repository": ("ecr:DeleteRepository",),
}
# Read-only actions IAM authorizes only on Resource "*".
UNSCOPED = frozenset({"logs:DescribeLogGroups", "cloudwatch:DescribeAlarms", "ssm:DescribeAssociation",
                      "ssm:ListAssociations"})


@dataclass(frozen=True)
class GuardProps:
    names: CourseNames
    # The function's settings without the topic and role ARNs, which this construct creates and fills in.
    settings: handler.Settings
    every_minutes: int
    budget_usd: float
    instructor_email: str | None = None


def _tag_condition(course: str) -> dict[str, dict[str, str]]:
    return {"StringEquals": {f"aws:ResourceTag/{TAG_COURSE}": course}}


def stop_statements(course: str, notebooks: str, notebook_logs: str,
                    more_reads: tuple[str, ...] = ()) -> list[iam.PolicyStatement]:
    """What stopping the course's idle and after-hours machines takes: find them, read their activity, stop the
    course-tagged ones. The guard's own role holds these, and so does the stop-only role in each student account."""
    return [
        iam.PolicyStatement(sid="FindRunning", resources=["*"], actions=[
            "sagemaker:ListNotebookInstances", "ec2:DescribeInstances", "cloudwatch:GetMetricStatistics",
            *more_reads]),
        iam.PolicyStatement(sid="ReadNotebookTags", actions=["sagemaker:ListTags"], resources=[notebooks]),
        iam.PolicyStatement(sid="StopCourseNotebooks", actions=["sagemaker:StopNotebookInstance"],
                            resources=[notebooks], conditions=_tag_condition(course)),
        iam.PolicyStatement(sid="StopCourseInstances", actions=["ec2:StopInstances"], resources=["*"],
                            conditions=_tag_condition(course)),
        iam.PolicyStatement(sid="NotebookActivity", actions=["logs:DescribeLogStreams"], resources=[notebook_logs]),
    ]


class TeardownGuard(Construct):
    def __init__(self, scope: Construct, id_: str, *, props: GuardProps) -> None:
        super().__init__(scope, id_)
        self._props = props
        self._stack = Stack.of(self)
        names = props.names.guard

        self.key, self.topic = self._reports()
        self.teardown_role = self._teardown_role()
        self.role = iam.Role(
            self,
            "Role",
            role_name=names.role,
            path=props.names.iam_path,
            description=f"Lambda {names.function}: stop, deactivate and request stack deletion for the course",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        settings = replace(props.settings, topic_arn=self.topic.topic_arn,
                           teardown_role_arn=self.teardown_role.role_arn)
        self._function_policy(settings)
        self.function, self.log_group = lab_function(self, FunctionProps(
            function_name=names.function,
            log_group_name=names.log_group,
            description="labkit: stop idle and after-hours lab machines, end the course on its expiry date",
            code_dir=HANDLER_DIR,
            role=self.role,
            environment=settings.to_env(),
            timeout=TIMEOUT,
            # Two overlapping runs could both act before either counts against the per-run cap.
            reserved_concurrent_executions=1,
        ))
        self.schedule = events.Rule(
            self,
            "Schedule",
            rule_name=names.schedule,
            description=f"labkit {props.names.course}: run the teardown guard",
            schedule=events.Schedule.rate(Duration.minutes(props.every_minutes)),
            # A missed run is made up by the next one; a retried run would only repeat it.
            targets=[targets.LambdaFunction(self.function, retry_attempts=0, max_event_age=Duration.hours(1))],
        )
        self._budget()

    def _arn(self, service: str, resource: str, name: str, *, colon: bool = False, region: str | None = None,
             account: str | None = None) -> str:
        return self._stack.format_arn(
            service=service, resource=resource, resource_name=name, region=region, account=account,
            arn_format=ArnFormat.COLON_RESOURCE_NAME if colon else ArnFormat.SLASH_RESOURCE_NAME,
        )

    def _iam_path_arns(self, kinds: Iterable[str]) -> list[str]:
        path = self._props.names.iam_path
        return [self._arn("iam", kind, f"{path.strip('/')}/*", region="") for kind in kinds]

    def _reports(self) -> tuple[kms.Key, sns.Topic]:
        """An encrypted topic that the function and AWS Budgets publish to, and the instructor reads."""
        props, account = self._props, self._stack.account
        # A customer-managed key, because AWS Budgets cannot publish to a topic under the AWS-managed SNS key
        # (its key policy cannot name budgets.amazonaws.com). About 1 USD a month while the course runs.
        key = kms.Key(
            self,
            "ReportsKey",
            description=f"labkit {props.names.course}: encrypts the guard's report topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="BudgetsPublishEncrypted",
            principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": account}},
        ))
        topic = sns.Topic(
            self,
            "Reports",
            topic_name=props.names.guard.topic,
            display_name=f"labkit {props.names.course}",
            master_key=key,
            enforce_ssl=True,
        )
        topic.add_to_resource_policy(iam.PolicyStatement(
            sid="BudgetsPublish",
            principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={"StringEquals": {"aws:SourceAccount": account}},
        ))
        if props.instructor_email:
            sns.Subscription(self, "InstructorMail", topic=topic, endpoint=props.instructor_email,
                             protocol=sns.SubscriptionProtocol.EMAIL)
        return key, topic

    def _teardown_role(self) -> iam.Role:
        props = self._props
        names, course = props.names, props.names.course
        rekognition = names.rekognition
        role = iam.Role(
            self,
            "TeardownRole",
            role_name=names.guard.teardown_role,
            path=names.iam_path,
            description=f"CloudFormation deletes the {course} lab stacks with this role when the course ends",
            # Only principals allowed iam:PassRole on it (the guard function) can have CloudFormation use it.
            assumed_by=iam.ServicePrincipal("cloudformation.amazonaws.com"),
        )
        notebooks = self._arn("sagemaker", "notebook-instance", f"{course}-*")
        lifecycle = self._arn("sagemaker", "notebook-instance-lifecycle-config", f"{course}-*")
        alarms = self._arn("cloudwatch", "alarm", f"{course}-*", colon=True)
        # Every bucket of the course: students' '<course>-<student>-<account>-<region>' and the class upload bucket
        # '<course>-rekognition-<account>-<region>'. One pattern, so the policy does not grow with the class.
        buckets = f"arn:{self._stack.partition}:s3:::{course}-*-{self._stack.account}-{self._stack.region}"
        scoped = {
            "s3": [buckets],
            "sqs": [self._stack.format_arn(service="sqs", resource=rekognition.dead_letter_queue)],
            "logs": [self._arn("logs", "log-group", rekognition.log_group, colon=True)],
            "lambda": [self._arn("lambda", "function", rekognition.function, colon=True)],
            "iam": self._iam_path_arns(("role", "user", "group", "instance-profile")),
        }
        tagged = {
            "ec2": ["*"],
            "cloudwatch": [alarms],
            # The course's shared repository and the students' own below it ('<course>-class/<student>').
            "ecr": [self._arn("ecr", "repository", names.class_repository),
                    self._arn("ecr", "repository", f"{names.class_repository}/*")],
        }
        actions = sorted({action for listed in DELETE_PERMISSIONS.values() for action in listed})
        read = [a for a in actions if a in UNSCOPED or a.startswith("ec2:Describe")]
        statements = [iam.PolicyStatement(sid="ReadWhatIsDeleted", actions=read, resources=["*"])]
        for service, resources in scoped.items():
            statements.append(iam.PolicyStatement(
                sid=f"Delete{service.capitalize()}", resources=resources,
                actions=[a for a in actions if a.startswith(f"{service}:") and a not in read]))
        for service, resources in tagged.items():
            statements.append(iam.PolicyStatement(
                sid=f"DeleteTagged{service.capitalize()}", resources=resources, conditions=_tag_condition(course),
                actions=[a for a in actions if a.startswith(f"{service}:") and a not in read]))
        sagemaker = [a for a in actions if a.startswith("sagemaker:")]
        statements += [
            iam.PolicyStatement(sid="DescribeNotebooks", actions=["sagemaker:DescribeNotebookInstance"],
                                resources=[notebooks]),
            iam.PolicyStatement(sid="DeleteTaggedNotebooks", resources=[notebooks], conditions=_tag_condition(course),
                                actions=[a for a in sagemaker if "Lifecycle" not in a and "Describe" not in a]),
            # Lifecycle configurations cannot carry tags: their course prefix bounds them.
            iam.PolicyStatement(sid="DeleteLifecycleConfigs", resources=[lifecycle],
                                actions=[a for a in sagemaker if "Lifecycle" in a]),
        ]
        policy = iam.Policy(self, "TeardownPolicy", statements=statements, roles=[role])
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]",
                    "Describe/List calls CloudFormation makes while deleting have no resource type (IAM accepts "
                    "only '*'); every EC2 delete on '*' is conditioned on the course tag.")
        reasons = {
            buckets: "Lab buckets are named '<course>-<name>-<account>-<region>' (students' and the class upload "
                     "bucket); the pattern covers exactly those of this course, account and region.",
            notebooks: "Notebook names are '<course>-<student>'; stop and delete also require the course tag.",
            lifecycle: "Lifecycle configuration names are '<course>-<student>-autostop' and cannot be tagged; "
                       "the course prefix bounds them.",
            alarms: "GPU idle alarms are named '<course>-<student>-gpu-idle'; delete also requires the course tag.",
            tagged["ecr"][1]: "Students' own repositories are '<course>-class/<student>', below the course's "
                              "repository; delete also requires the course tag.",
        }
        for arn in scoped["iam"]:
            reasons[arn] = ("Every role, user, group and instance profile of the course lives under the course's "
                            "own IAM path; nothing outside it is reachable.")
        for arn, reason in reasons.items():
            if "*" in arn:
                acknowledge_wildcard_resource(policy, arn, reason)
        return role

    def _function_policy(self, settings: handler.Settings) -> None:
        props, role = self._props, self.role
        course = props.names.course
        notebooks = self._arn("sagemaker", "notebook-instance", f"{course}-*")
        users = self._iam_path_arns(("user",))[0]
        # Each lab's class stack `<course>-<lab>`, and for labs with a stack per student `<course>-<lab>-<student>`.
        labs = {props.names.stack(lab): lab for lab in LABS}
        stacks = [self._arn("cloudformation", "stack", f"{name}{suffix}/*") for name in settings.stacks
                  for suffix, kind in (("", CLASS_LABS), ("-*", PER_STUDENT_LABS)) if labs[name] in kind]
        notebook_logs = self._arn("logs", "log-group", handler.NOTEBOOK_LOG_GROUP, colon=True)
        statements = [
            *stop_statements(course, notebooks, notebook_logs, ("iam:ListUsers", "cloudformation:ListStacks")),
            iam.PolicyStatement(sid="ReadStudentKeys", actions=["iam:ListUserTags", "iam:ListAccessKeys"],
                                resources=[users]),
            iam.PolicyStatement(sid="DeactivateStudentKeys", actions=["iam:UpdateAccessKey"], resources=[users],
                                conditions=_tag_condition(course)),
            iam.PolicyStatement(sid="ReadLabStacks", resources=stacks,
                                actions=["cloudformation:DescribeStacks", "cloudformation:ListStackResources"]),
            iam.PolicyStatement(sid="DeleteLabStacks", actions=["cloudformation:DeleteStack"], resources=stacks,
                                conditions=_tag_condition(course)),
            iam.PolicyStatement(sid="PassTeardownRole", actions=["iam:PassRole"],
                                resources=[self.teardown_role.role_arn],
                                conditions={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}),
            iam.PolicyStatement(sid="Report", actions=["sns:Publish"], resources=[self.topic.topic_arn]),
            iam.PolicyStatement(sid="ReportEncrypted", actions=["kms:GenerateDataKey", "kms:Decrypt"],
                                resources=[self.key.key_arn]),
        ]
        if settings.policy.capped:
            statements += self._meter_statements(course, notebooks)
        reach = self._student_accounts_statements(settings)
        statements += reach
        for statement in statements:
            role.add_to_principal_policy(statement)
        policy = role.node.find_child("DefaultPolicy")
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]",
                    "List/Describe/GetMetricStatistics have no resource type (IAM accepts only '*'); "
                    "ec2:StopInstances on '*' is conditioned on the course tag.")
        acknowledge_wildcard_resource(policy, notebooks, "Notebook names are '<course>-<student>'; stopping also "
                                      "requires the course tag.")
        acknowledge_wildcard_resource(policy, users, "The course's student users live under its own IAM path; "
                                      "deactivating a key also requires the course tag.")
        for statement in reach:
            for arn in statement.resources:
                acknowledge_wildcard_resource(policy, arn, "Account-per-student mode: the stop-only role of the same "
                                              "name in every student account (their ids are data in Organizations), "
                                              "and the class stack set's instances, whose ARN ends in a generated id.")
        for arn in stacks:
            acknowledge_wildcard_resource(policy, arn, "A stack ARN ends in an id CloudFormation generates at "
                                          "creation; the name is the lab's (or '<lab>-<student>' for a student's "
                                          "stack), and delete requires the course tag.")

    def _student_accounts_statements(self, settings: handler.Settings) -> list[iam.PolicyStatement]:
        """Account-per-student mode only: list the class stack set's accounts, assume the stop-only role there."""
        if not settings.student_stack_set:
            return []
        path = self._props.names.iam_path
        return [
            iam.PolicyStatement(sid="FindStudentAccounts", actions=["cloudformation:ListStackInstances"],
                                resources=[self._arn("cloudformation", "stackset", f"{settings.student_stack_set}:*")]),
            iam.PolicyStatement(sid="StopInStudentAccounts", actions=["sts:AssumeRole"],
                                resources=[self._arn("iam", "role", f"{path.strip('/')}/{settings.student_role}",
                                                     region="", account="*")]),
        ]

    @staticmethod
    def _meter_statements(course: str, notebooks: str) -> list[iam.PolicyStatement]:
        """With a spend cap only: write the guard's two tags (its ledger and the cap mark) on course machines,
        and remove the cap mark. No other tag key, no other resource."""
        tagged = {"StringEquals": {f"aws:ResourceTag/{TAG_COURSE}": course}}

        def keys(*names: str) -> dict[str, dict[str, Any]]:
            return {**tagged, "ForAllValues:StringEquals": {"aws:TagKeys": list(names)}}

        both, cap = (handler.TAG_SPEND, handler.TAG_CAPPED), (handler.TAG_CAPPED,)
        return [
            iam.PolicyStatement(sid="MeterInstances", actions=["ec2:CreateTags"], resources=["*"],
                                conditions=keys(*both)),
            iam.PolicyStatement(sid="LiftInstanceCaps", actions=["ec2:DeleteTags"], resources=["*"],
                                conditions=keys(*cap)),
            iam.PolicyStatement(sid="MeterNotebooks", actions=["sagemaker:AddTags"], resources=[notebooks],
                                conditions=keys(*both)),
            iam.PolicyStatement(sid="LiftNotebookCaps", actions=["sagemaker:DeleteTags"], resources=[notebooks],
                                conditions=keys(*cap)),
        ]

    def _budget(self) -> None:
        props = self._props
        subscribers = [budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=self.topic.topic_arn)]
        if props.instructor_email:
            subscribers.append(budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL",
                                                                    address=props.instructor_email))
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=props.names.guard.budget,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=props.budget_usd, unit="USD"),
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=kind, comparison_operator="GREATER_THAN", threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=subscribers,
                )
                for kind, percent in BUDGET_ALERTS
            ],
        )
        # Budgets checks the topic policy when the notification is created. The topic itself needs no DependsOn:
        # the subscribers' Ref already orders it (cfn-lint W3005).
        topic_policy = self.topic.node.find_child("Policy").node.default_child
        assert isinstance(topic_policy, CfnResource)
        self.budget.add_resource_dependency(topic_policy)
