"""The students' IAM users, in a course group: Deep Learning Containers pulls, their own notebook, instance and
bucket (tag-scoped, see student_access), and optionally a class ECR repository they push their own images to."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Tags
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.dlc_pull import DLC_PULL_POLICY, PULL_ACTIONS, acknowledge_registry_login, dlc_pull_document
from infra.student_access import STUDENT_ACCESS_POLICY, student_access_document
from course.naming import TAG_STUDENT, CourseNames

CLASS_REPOSITORY_POLICY = "class-repository"
# docker push checks which layers exist, uploads the missing ones and writes the manifest. No delete:
# the lifecycle policy expires old images, so students cannot remove each other's.
PUSH_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:DescribeImages",
    "ecr:ListImages",
)
# Untagged images are leftovers of re-pushed tags; nobody pulls them, but they bill per GB-month.
UNTAGGED_DAYS = 1


@dataclass(frozen=True)
class ContainersProps:
    names: CourseNames
    students: tuple[str, ...]
    region: str
    class_repository: bool
    keep_images: int


class ContainerAccess(Construct):
    """Users get their permissions only through the group, never attached to themselves, so one policy
    change covers the class and a user removed from the group has nothing left.

    The policies are inline on the group rather than separate AWS::IAM::Policy resources: they live and die
    with the group, and a separate group policy cannot be created in the emulator, which has no
    AWS::IAM::Group. Access keys are not created here (see lab_scripts.access_keys).
    """

    def __init__(self, scope: Construct, id_: str, *, props: ContainersProps) -> None:
        super().__init__(scope, id_)
        names = props.names
        self.group = iam.Group(self, "Group", group_name=names.containers_group, path=names.iam_path)
        policies = [iam.CfnGroup.PolicyProperty(
            policy_name=DLC_PULL_POLICY, policy_document=dlc_pull_document(self, props.region))]
        acknowledge_registry_login(self.group)
        policies.append(iam.CfnGroup.PolicyProperty(
            policy_name=STUDENT_ACCESS_POLICY, policy_document=student_access_document(self.group, names)))

        self.repository: ecr.Repository | None = None
        if props.class_repository:
            self.repository = ecr.Repository(
                self,
                "ClassRepository",
                repository_name=names.class_repository,
                image_scan_on_push=True,
                # CloudFormation deletes the images with the repository: no custom resource needed.
                empty_on_delete=True,
                removal_policy=RemovalPolicy.DESTROY,
                lifecycle_rules=[
                    ecr.LifecycleRule(rule_priority=1, description="expire untagged images",
                                      tag_status=ecr.TagStatus.UNTAGGED, max_image_age=Duration.days(UNTAGGED_DAYS)),
                    ecr.LifecycleRule(rule_priority=2, description=f"keep the newest {props.keep_images} images",
                                      tag_status=ecr.TagStatus.ANY, max_image_count=props.keep_images),
                ],
            )
            policies.append(iam.CfnGroup.PolicyProperty(
                policy_name=CLASS_REPOSITORY_POLICY,
                policy_document=iam.PolicyDocument(statements=[iam.PolicyStatement(
                    sid="PushPullClassRepository",
                    actions=[*PULL_ACTIONS, *PUSH_ACTIONS],
                    resources=[self.repository.repository_arn],
                )]),
            ))
        group_resource = self.group.node.default_child
        assert isinstance(group_resource, iam.CfnGroup)
        group_resource.policies = policies

        self.users: dict[str, iam.User] = {}
        for student in props.students:
            user = iam.User(
                self, student, user_name=names.student(student).containers_user, path=names.iam_path,
                groups=[self.group],
            )
            Tags.of(user).add(TAG_STUDENT, student)
            self.users[student] = user
