"""GPU workstations running the Deep Learning AMI: one instance per student, reached through Session Manager.

Class-wide parts (role, instance profile, security group) are created once in the class stack; each student's
stack holds an instance with an encrypted root volume, IMDSv2, and an alarm that stops it when idle. The alarm uses CloudWatch's
built-in EC2 stop action, so idle protection needs no Lambda or custom resource. Idle is GPU-aware: the instance's
CloudWatch agent (configured by its user data) publishes CPU, GPU and terminal input each minute, and the alarm's
metric math is the guard's own `IdleRule`, so a training loop at 90 % GPU and 3 % CPU is never idle.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnParameter, Duration, Fn, Stack, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.class_network import ClassNetwork
from infra.dlc_pull import acknowledge_registry_login, dlc_pull_document
from infra.nag import acknowledge
from lab_scripts.boot_scripts import render_gpu_user_data
from lab_scripts.guard_fn.handler import AGENT_NAMESPACE, CPU_METRIC, GPU_METRIC, INPUT_METRIC, IdleRule
from course.catalog import DLAMIS
from course.config import DlamiSettings
from course.naming import TAG_STUDENT, CourseNames, StudentNames

# Session Manager's agent calls; none of them supports resource-level permissions.
SESSION_MANAGER_ACTIONS = [
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
]
# The agent publishes once a minute: the alarm evaluates minute by minute (EC2's free CPU metric has 5-minute
# points, which would add up to 5 minutes to every stop).
ALARM_PERIOD_MINUTES = 1


class GpuClass(Construct):
    """What the class's instances share, created once: role, instance profile, security group."""

    def __init__(self, scope: Construct, id_: str, *, names: CourseNames, settings: DlamiSettings,
                 network: ClassNetwork) -> None:
        super().__init__(scope, id_)
        self.network = network
        self.role = iam.Role(
            self,
            "Role",
            role_name=names.dlami_role,
            path=names.iam_path,
            description="GPU lab instances: Session Manager and Deep Learning Containers pulls only",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
        )
        self.policy = iam.Policy(
            self,
            "SessionManager",
            statements=[iam.PolicyStatement(sid="SessionManager", actions=SESSION_MANAGER_ACTIONS, resources=["*"])],
        )
        # The CloudWatch agent publishes the idle alarm's metrics; only into the labkit namespace.
        self.policy.add_statements(iam.PolicyStatement(
            sid="PublishIdleMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": AGENT_NAMESPACE}},
        ))
        self.policy.attach_to_role(self.role)
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Session Manager's agent actions (ssm:UpdateInstanceInformation, ssmmessages:*Channel) and "
            "cloudwatch:PutMetricData do not support resource-level permissions; PutMetricData is limited to the "
            "labkit namespace, and this inline policy replaces the broader AmazonSSMManagedInstanceCore.",
        )
        # Students on the instance pull Deep Learning Containers with the instance role: no access keys needed.
        dlc_pull = iam.Policy(self, "DlcPull", document=dlc_pull_document(self, Stack.of(self).region))
        dlc_pull.attach_to_role(self.role)
        acknowledge_registry_login(dlc_pull)
        self.profile = iam.CfnInstanceProfile(
            self, "Profile", instance_profile_name=names.dlami_role, path=names.iam_path, roles=[self.role.role_name]
        )

        ingress = []
        if settings.ssh_cidr:
            ingress.append(ec2.CfnSecurityGroup.IngressProperty(
                ip_protocol="tcp", from_port=22, to_port=22, cidr_ip=settings.ssh_cidr,
                description="SSH from the instructor's network",
            ))
        self.security_group = ec2.CfnSecurityGroup(
            self,
            "SecurityGroup",
            group_description=f"{names.course} GPU lab instances: no inbound unless SSH is configured",
            vpc_id=network.vpc.ref,
            security_group_ingress=ingress or None,
            security_group_egress=[ec2.CfnSecurityGroup.EgressProperty(
                ip_protocol="-1", cidr_ip="0.0.0.0/0", description="Session Manager, package mirrors, datasets",
            )],
        )


@dataclass(frozen=True)
class WorkstationProps:
    names: StudentNames
    settings: DlamiSettings
    gpu_class: GpuClass


class GpuWorkstation(Construct):
    """One student's instance and its idle alarm; the class parts come from `GpuClass` in the class stack."""

    def __init__(self, scope: Construct, id_: str, *, props: WorkstationProps) -> None:
        super().__init__(scope, id_)
        settings, names, shared = props.settings, props.names, props.gpu_class
        ami = DLAMIS[settings.ami_type]
        Tags.of(self).add(TAG_STUDENT, names.student)
        image_id = settings.ami_id or CfnParameter(
            Stack.of(self),
            "DlamiImageId",
            type="AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
            default=ami.ssm_parameter,
            description=f"Deep Learning AMI ({settings.ami_type}), resolved from AWS's public SSM parameter",
        ).value_as_string
        self.instance = ec2.CfnInstance(
            self,
            "Instance",
            image_id=image_id,
            instance_type=settings.instance_type,
            subnet_id=shared.network.subnet.ref,
            security_group_ids=[shared.security_group.attr_group_id],
            iam_instance_profile=shared.profile.ref,
            key_name=settings.ssh_key_name,
            user_data=Fn.base64(render_gpu_user_data()),
            monitoring=False,
            instance_initiated_shutdown_behavior="stop",
            # Hop limit 2 lets the Deep Learning Containers lab reach IMDSv2 from inside Docker.
            metadata_options=ec2.CfnInstance.MetadataOptionsProperty(
                http_tokens="required", http_endpoint="enabled", http_put_response_hop_limit=2
            ),
            block_device_mappings=[ec2.CfnInstance.BlockDeviceMappingProperty(
                device_name=ami.root_device,
                ebs=ec2.CfnInstance.EbsProperty(
                    volume_size=settings.volume_gb, volume_type="gp3", encrypted=True, delete_on_termination=True
                ),
            )],
            tags=[{"key": "Name", "value": names.workstation}],
            # Course tags on the root volume let the audit find a volume that outlives its instance.
            propagate_tags_to_volume_on_creation=True,
        )
        acknowledge(
            self.instance,
            "AwsSolutions-EC28",
            "Detailed monitoring bills per instance; the idle alarm works on the free 5-minute metrics.",
        )
        acknowledge(
            self.instance,
            "AwsSolutions-EC29",
            "Lab instances are meant to be terminated at course end (labctl destroy); termination protection "
            "would leave billable GPUs behind.",
        )
        self._idle_alarm(self, names.idle_alarm, self.instance, settings)

    @staticmethod
    def _idle_alarm(scope: Construct, name: str, instance: ec2.CfnInstance, settings: DlamiSettings) -> None:
        """Stop the instance after `idle_minutes` minutes in which CPU, GPU and terminal input were all idle.

        Missing data never stops it: FILL makes a missing point busy (an agent that is down, or not installed,
        leaves the machine running: the guard's spend cap and after-hours stop remain), and with no point at
        all (a stopped instance) the alarm treats the window as not breaching, so it does not flap.
        """
        rule = IdleRule(settings.idle_cpu_percent, settings.idle_gpu_percent)

        def agent(metric: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(namespace=AGENT_NAMESPACE, metric_name=metric,
                                     dimensions_map={"InstanceId": instance.ref}, statistic="Maximum",
                                     period=Duration.minutes(ALARM_PERIOD_MINUTES))

        alarm = cloudwatch.Alarm(
            scope,
            "IdleStop",
            alarm_name=name,
            alarm_description=(f"Stops the GPU instance after {settings.idle_minutes} minutes with CPU below "
                               f"{settings.idle_cpu_percent} %, GPU below {settings.idle_gpu_percent} % and no "
                               "terminal input"),
            metric=cloudwatch.MathExpression(
                expression=rule.expression("cpu", "gpu", "tty"),
                using_metrics={"cpu": agent(CPU_METRIC), "gpu": agent(GPU_METRIC), "tty": agent(INPUT_METRIC)},
                label="busy (1 or more: some signal is busy)",
                period=Duration.minutes(ALARM_PERIOD_MINUTES),
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=max(1, settings.idle_minutes // ALARM_PERIOD_MINUTES),
            datapoints_to_alarm=max(1, settings.idle_minutes // ALARM_PERIOD_MINUTES),
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # CloudWatch's built-in stop action (no Lambda, no permission of ours: the service acts for the account).
        # CDK's Ec2Action refuses any alarm that is not on one EC2 per-instance metric, a narrower rule than the
        # service's ("a metric alarm watches a single metric or the result of a math expression ... the action
        # can be an Amazon EC2 action"), so the action ARN is set on the L1 alarm.
        stack = Stack.of(scope)
        cfn = alarm.node.default_child
        assert isinstance(cfn, cloudwatch.CfnAlarm)
        cfn.alarm_actions = [f"arn:{stack.partition}:automate:{stack.region}:ec2:stop"]
