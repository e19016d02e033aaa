"""What a student may do with their own lab machines and bucket, and nothing of anyone else's.

One class-wide policy, not one per student: each student's IAM user carries the tag `labkit:student`, and
the statements compare it with the same tag on the notebook and instance (attribute-based access control).
S3 ARNs cannot be matched by tag, so the bucket ARN is built from the caller's tag instead: a student's
credentials name exactly their own bucket. The policy does not grow with the class.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from infra.nag import acknowledge, acknowledge_wildcard_resource
from course.naming import TAG_COURSE, TAG_STUDENT, CourseNames

STUDENT_ACCESS_POLICY = "student-access"
# IAM policy variable: the calling user's own student tag, resolved by IAM at request time.
CALLER_STUDENT = f"${{aws:PrincipalTag/{TAG_STUDENT}}}"
# The tag Session Manager puts on every session: the unique id (aws:userid, 'AIDA...') of the user who started it.
SESSION_OWNER_TAG = "ssm:resourceTag/aws:ssmmessages:session-id"
OWN_SESSION = {"StringEquals": {SESSION_OWNER_TAG: "${aws:userid}"}}


def _own(course: str, prefix: str = "aws") -> dict[str, dict[str, str]]:
    """Same student tag as the caller, and the course's tag: another course's machine never matches."""
    return {"StringEquals": {f"{prefix}:ResourceTag/{TAG_STUDENT}": CALLER_STUDENT,
                             f"{prefix}:ResourceTag/{TAG_COURSE}": course}}


def student_access_document(scope: IConstruct, names: CourseNames) -> iam.PolicyDocument:
    """Open, start and stop one's own notebook and GPU instance, reach the instance through Session Manager,
    read and write one's own bucket. Acknowledgments for the patterns are made on `scope` (the group)."""
    stack = Stack.of(scope)
    course = names.course
    notebooks = stack.format_arn(service="sagemaker", resource="notebook-instance", resource_name=f"{course}-*")
    instances = stack.format_arn(service="ec2", resource="instance", resource_name="*")
    session_document = stack.format_arn(service="ssm", resource="document", resource_name="SSM-SessionManagerRunShell")
    sessions = stack.format_arn(service="ssm", resource="session", resource_name="${aws:username}-*")
    bucket = f"arn:{stack.partition}:s3:::{course}-{CALLER_STUDENT}-{stack.account}-{stack.region}"
    objects = f"{bucket}/*"
    document = iam.PolicyDocument(statements=[
        iam.PolicyStatement(sid="OwnNotebook", resources=[notebooks], conditions=_own(course), actions=[
            "sagemaker:CreatePresignedNotebookInstanceUrl", "sagemaker:DescribeNotebookInstance",
            "sagemaker:StartNotebookInstance", "sagemaker:StopNotebookInstance"]),
        iam.PolicyStatement(sid="OwnInstance", resources=[instances], conditions=_own(course),
                            actions=["ec2:StartInstances", "ec2:StopInstances"]),
        iam.PolicyStatement(sid="OwnInstanceSession", resources=[instances], conditions=_own(course, "ssm"),
                            actions=["ssm:StartSession"]),
        iam.PolicyStatement(sid="SessionDocument", resources=[session_document], actions=["ssm:StartSession"]),
        # Session ids are '<user>-<random>', so `<user>-*` alone also matches the sessions of a user whose name
        # extends this one ('ml101-alice-dlc' and 'ml101-alice-dlc-2-dlc'). Session Manager tags each session
        # with the starter's unique id, which no other user shares; the roster also refuses such id pairs.
        iam.PolicyStatement(sid="OwnSessions", resources=[sessions], conditions=OWN_SESSION,
                            actions=["ssm:ResumeSession", "ssm:TerminateSession"]),
        iam.PolicyStatement(sid="FindInstances", resources=["*"], actions=["ec2:DescribeInstances"]),
        # The guard marks an over-cap student's machines `labkit:capped=<YYYY-MM-DD>` (lab_scripts/guard_fn); an
        # explicit deny wins over the allows above until it lifts the mark (the next day, or `labctl allow`).
        iam.PolicyStatement(sid="CappedNoStart", effect=iam.Effect.DENY, resources=[notebooks, instances],
                            actions=["sagemaker:StartNotebookInstance", "ec2:StartInstances"],
                            conditions={"StringLike": {"aws:ResourceTag/labkit:capped": "????-??-??"}}),
        iam.PolicyStatement(sid="OwnBucket", resources=[bucket], actions=["s3:ListBucket", "s3:GetBucketLocation"]),
        iam.PolicyStatement(sid="OwnObjects", resources=[objects],
                            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]),
    ])
    acknowledge(scope, "AwsSolutions-IAM5[Resource::*]",
                "ec2:DescribeInstances has no resource-level permissions; students find their instance id with "
                "it, and every action that changes an instance is tag-conditioned.")
    reasons = {
        notebooks: "Notebook names are '<course>-<student>'; every action also requires the caller's own "
                   "student tag and the course tag on the notebook.",
        instances: "Instance ids are generated at launch; start, stop and sessions require the caller's own "
                   "student tag and the course tag on the instance.",
        sessions: "Session Manager names sessions '<user>-<id>'; the caller's own user name bounds them, and the "
                  "session's owner tag must be the caller's unique user id.",
        objects: "Objects of the caller's own bucket (its name carries the caller's student tag); keys are "
                 "chosen by the student at run time.",
    }
    for arn, reason in reasons.items():
        acknowledge_wildcard_resource(scope, arn, reason)
    return document

