"""A student's lab bucket: private, encrypted, TLS-only, versioned, and deletable by `labctl destroy`."""

from __future__ import annotations

from aws_cdk import Aws, Duration, Fn, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge

# Old versions protect students from overwriting their own work; a week is enough to notice and recover.
NONCURRENT_VERSION_DAYS = 7


class LabBucket(Construct):
    """S3 bucket with lab-appropriate defaults.

    CDK retains buckets by default, which leaves billable storage behind after a course. Here the bucket is
    destroyed with its stack. CloudFormation cannot delete a non-empty bucket, and labkit avoids CDK's
    auto-delete custom resource (it needs a Lambda the emulator cannot run, and would delete student work
    unarchived): `labctl destroy` archives and empties the bucket first. A plain `cdk destroy` of a
    non-empty bucket fails safe, keeping the data.

    `kept=True` (a solo learner's bucket) is retained instead: a plain `cdk destroy` succeeds and keeps the
    learner's files. Its name is `bucket_name` plus `-` and the first 8 hex digits of its stack's id, so the next
    `cdk deploy` (a new stack, a new id) creates a new bucket instead of failing on the kept one
    (`BucketAlreadyExists`); the prefix and the tags still say whose it is (`lab_scripts.retained` finds it).
    """

    def __init__(self, scope: Construct, id_: str, *, bucket_name: str, kept: bool = False) -> None:
        super().__init__(scope, id_)
        # arn:...:stack/<name>/<uuid>: the uuid's first group is new for every stack CloudFormation creates.
        generation = Fn.select(0, Fn.split("-", Fn.select(2, Fn.split("/", Aws.STACK_ID))))
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=Fn.join("-", [bucket_name, generation]) if kept else bucket_name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN if kept else RemovalPolicy.DESTROY,
            auto_delete_objects=False,
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "Per-student lab bucket holding coursework only; server access logs would need a second bucket "
            "per student that outlives the lab. Object access is audited through CloudTrail at account level.",
        )
