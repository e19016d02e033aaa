"""Images uploaded to S3 are labelled by Amazon Rekognition in a Lambda function; results land beside them.

One upload bucket serves the whole class (students' work stays in their own notebook buckets): it is a
demo pipeline, and one bucket keeps one trigger, one function and one bill line to explain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.lab_bucket import LabBucket
from infra.lab_function import ASSET_EXCLUDE, FunctionProps, lab_function
from infra.nag import acknowledge, acknowledge_wildcard_resource
from lab_scripts.rekognition_fn import handler
from course.naming import RekognitionNames

HANDLER_DIR = Path(handler.__file__).parent
__all__ = ["ASSET_EXCLUDE", "HANDLER_DIR", "ImageLabeler", "ImageLabelerProps"]
# Room for botocore's and the handler's throttling retries across every configured Rekognition call.
TIMEOUT = Duration.seconds(120)


def trigger_suffixes() -> list[str]:
    """S3 key filters are case-sensitive; cameras write .JPG, so both cases trigger."""
    return sorted({case for suffix in handler.IMAGE_SUFFIXES for case in (suffix, suffix.upper())})


@dataclass(frozen=True)
class ImageLabelerProps:
    names: RekognitionNames
    iam_path: str
    settings: handler.Settings


class ImageLabeler(Construct):
    def __init__(self, scope: Construct, id_: str, *, props: ImageLabelerProps) -> None:
        super().__init__(scope, id_)
        names, settings = props.names, props.settings
        stack = Stack.of(self)

        self.bucket = LabBucket(self, "Uploads", bucket_name=names.bucket).bucket
        self.dead_letters = sqs.Queue(
            self,
            "Failed",
            queue_name=names.dead_letter_queue,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Built from the derived name, not from a Ref to the bucket: the bucket's notification depends on the
        # invoke permission and the policy, so a Ref back to the bucket would be a dependency cycle.
        bucket_arn = f"arn:{stack.partition}:s3:::{names.bucket}"
        uploads_arn = f"{bucket_arn}/{settings.uploads_prefix}*"
        results_arn = f"{bucket_arn}/{settings.results_prefix}*"
        self.role = iam.Role(
            self,
            "Role",
            role_name=names.role,
            path=props.iam_path,
            description=f"Lambda {names.function}: read uploads, write results, call Rekognition",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        statements = [
            iam.PolicyStatement(
                sid="DetectInImages",
                actions=[f"rekognition:{handler.FEATURES[name]}" for name in settings.analysis.features],
                resources=["*"],
            ),
            iam.PolicyStatement(sid="ReadUploads", actions=["s3:GetObject"], resources=[uploads_arn]),
            iam.PolicyStatement(sid="WriteResults", actions=["s3:PutObject"], resources=[results_arn]),
        ]
        for statement in statements:
            self.role.add_to_principal_policy(statement)

        self.function, self.log_group = lab_function(self, FunctionProps(
            function_name=names.function,
            log_group_name=names.log_group,
            description="labkit: label images uploaded to the class bucket with Amazon Rekognition",
            code_dir=HANDLER_DIR,
            role=self.role,
            environment=settings.to_env(),
            timeout=TIMEOUT,
            dead_letter_queue=self.dead_letters,
        ))
        policy = self.role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Rekognition's Detect* image APIs have no resource type: IAM accepts only Resource '*' for them. "
            "The statement allows exactly the Detect calls the configured features make.",
        )
        acknowledge_wildcard_resource(
            policy,
            uploads_arn,
            "Students choose the image keys at upload time; the grant is read-only and bounded to the uploads "
            "prefix of this one bucket.",
        )
        acknowledge_wildcard_resource(
            policy,
            results_arn,
            "Result keys are derived from each uploaded key at run time; the grant is write-only and bounded to "
            "the results prefix, outside the trigger prefix, so results cannot re-invoke the function.",
        )

        permission = lambda_.CfnPermission(
            self,
            "InvokeFromUploads",
            action="lambda:InvokeFunction",
            function_name=self.function.function_arn,
            principal="s3.amazonaws.com",
            source_arn=bucket_arn,
            source_account=stack.account,
        )
        # L1 notification, not add_event_notification: that one is a CDK custom resource (a Lambda of its own)
        # that the emulator cannot run, and S3 checks the invoke permission when the configuration is set.
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            lambda_configurations=[
                s3.CfnBucket.LambdaConfigurationProperty(
                    event="s3:ObjectCreated:*",
                    function=self.function.function_arn,
                    filter=s3.CfnBucket.NotificationFilterProperty(
                        s3_key=s3.CfnBucket.S3KeyFilterProperty(
                            rules=[
                                s3.CfnBucket.FilterRuleProperty(name="prefix", value=settings.uploads_prefix),
                                s3.CfnBucket.FilterRuleProperty(name="suffix", value=suffix),
                            ]
                        )
                    ),
                )
                for suffix in trigger_suffixes()
            ]
        )
        cfn_bucket.node.add_dependency(permission)
