"""One student's SageMaker notebook: its bucket, a role that reaches only that bucket, and idle auto-stop."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Fn, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.lab_bucket import LabBucket
from infra.nag import acknowledge, acknowledge_wildcard_resource
from lab_scripts.boot_scripts import NOTEBOOK_PREFIX, render_on_start
from course.config import SageMakerSettings
from course.naming import TAG_STUDENT, StudentNames

# SageMaker writes notebook and lifecycle logs here, one stream prefix per notebook.
NOTEBOOK_LOG_GROUP = "/aws/sagemaker/NotebookInstances"


@dataclass(frozen=True)
class NotebookProps:
    names: StudentNames
    iam_path: str
    settings: SageMakerSettings
    # Solo mode: the bucket outlives a plain `cdk destroy` under a name the next deploy does not reuse (LabBucket).
    keep_bucket: bool = False


class LabNotebook(Construct):
    def __init__(self, scope: Construct, id_: str, *, props: NotebookProps) -> None:
        super().__init__(scope, id_)
        names = props.names
        Tags.of(self).add(TAG_STUDENT, names.student)
        stack = Stack.of(self)

        self.bucket = LabBucket(self, "Storage", bucket_name=names.bucket, kept=props.keep_bucket).bucket
        # SageMaker lowercases notebook names in ARNs; IAM compares ARNs case-sensitively.
        notebook_arn = stack.format_arn(
            service="sagemaker", resource="notebook-instance", resource_name=names.notebook.lower()
        )
        log_group_arn = stack.format_arn(
            service="logs", resource="log-group", resource_name=NOTEBOOK_LOG_GROUP, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        objects_arn = self.bucket.arn_for_objects("*")
        synced_arn = self.bucket.arn_for_objects(f"{NOTEBOOK_PREFIX}*")
        log_streams_arn = f"{log_group_arn}:log-stream:{names.notebook}/*"

        self.role = iam.Role(
            self,
            "Role",
            role_name=names.notebook_role,
            path=props.iam_path,
            description=f"SageMaker notebook {names.notebook}: its own bucket and self-stop only",
            # Confused-deputy guard: only SageMaker acting for this account may assume the role.
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
        )
        policy = iam.Policy(
            self,
            "Policy",
            statements=[
                iam.PolicyStatement(
                    sid="ListOwnBucket",
                    actions=["s3:ListBucket", "s3:GetBucketLocation"],
                    resources=[self.bucket.bucket_arn],
                ),
                iam.PolicyStatement(
                    sid="ReadWriteOwnObjects",
                    actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                    resources=[objects_arn],
                ),
                # What the lifecycle script's sync of the notebook's volume writes, and only there. It adds no
                # access beyond ReadWriteOwnObjects (the student's code uses that); it names the sync's reach so a
                # narrower role for students' own code cannot take the sync away unnoticed (a test pins both).
                iam.PolicyStatement(
                    sid="SyncNotebookVolume",
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[synced_arn],
                ),
                iam.PolicyStatement(
                    sid="StopSelfWhenIdle",
                    actions=["sagemaker:DescribeNotebookInstance", "sagemaker:StopNotebookInstance"],
                    resources=[notebook_arn],
                ),
                iam.PolicyStatement(
                    sid="NotebookLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_streams_arn],
                ),
                iam.PolicyStatement(
                    sid="NotebookLogGroup",
                    actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                    resources=[log_group_arn],
                ),
            ],
        )
        policy.attach_to_role(self.role)
        acknowledge_wildcard_resource(
            policy,
            objects_arn,
            "Objects of the student's own bucket: object keys are chosen by the student at run time, and the "
            "bucket ARN bounds them to this one bucket.",
        )
        acknowledge_wildcard_resource(
            policy,
            synced_arn,
            f"The copy of the notebook's volume under {NOTEBOOK_PREFIX} in the student's own bucket: file names "
            "are the student's, chosen at run time.",
        )
        acknowledge_wildcard_resource(
            policy,
            log_streams_arn,
            "SageMaker names the log streams of a notebook '<notebook>/<source>' at run time; the prefix "
            "limits writes to this notebook's own streams.",
        )

        self.lifecycle = sagemaker.CfnNotebookInstanceLifecycleConfig(
            self,
            "AutoStop",
            notebook_instance_lifecycle_config_name=names.lifecycle_config,
            on_start=[
                sagemaker.CfnNotebookInstanceLifecycleConfig.NotebookInstanceLifecycleHookProperty(
                    content=Fn.base64(render_on_start(props.settings.idle_minutes, bucket=names.bucket,
                                                      region=names.region))
                )
            ],
        )
        self.notebook = sagemaker.CfnNotebookInstance(
            self,
            "Notebook",
            notebook_instance_name=names.notebook,
            instance_type=props.settings.instance_type,
            role_arn=self.role.role_arn,
            volume_size_in_gb=props.settings.volume_gb,
            root_access="Disabled",
            direct_internet_access="Enabled",
            lifecycle_config_name=self.lifecycle.attr_notebook_instance_lifecycle_config_name,
            instance_metadata_service_configuration=sagemaker.CfnNotebookInstance.InstanceMetadataServiceConfigurationProperty(
                minimum_instance_metadata_service_version="2"
            ),
        )
        # The first start runs the lifecycle script, which needs the policy to be attached already.
        self.notebook.node.add_dependency(policy)
        acknowledge(
            self.notebook,
            "AwsSolutions-SM1",
            "Course notebooks install packages from PyPI; a VPC-only notebook would need a NAT gateway per "
            "class (about 32 USD a month) for no isolation the lab needs.",
        )
        acknowledge(
            self.notebook,
            "AwsSolutions-SM3",
            "Direct internet access is how students reach PyPI and course datasets without a NAT gateway; "
            "root access is disabled and the role reaches only the student's bucket.",
        )
        acknowledge(
            self.notebook,
            "AwsSolutions-SM2",
            "The ML storage volume is encrypted with the AWS-managed key; a customer-managed KMS key per "
            "student costs 1 USD a month and outlives the lab by its deletion window.",
        )

