"""The students' IAM users, in a course group: Deep Learning Containers pulls, their own notebook, instance and
bucket (tag-scoped, see student_access), and optionally the class ECR repositories: one per student that only they
push to and pull from, and the course's shared one they pull the instructor's base images from."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack, Tags
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.dlc_pull import DLC_PULL_POLICY, PULL_ACTIONS, acknowledge_registry_login, dlc_pull_document
from infra.student_access import CALLER_STUDENT, STUDENT_ACCESS_POLICY, student_access_document
from course.naming import TAG_STUDENT, CourseNames

CLASS_REPOSITORY_POLICY = "class-repository"
# Seeing which tags exist: on one's own repository and the course's shared one only.
READ_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:DescribeImages", "ecr:ListImages")
# docker push checks which layers exist, uploads the missing ones and writes the manifest. No delete:
# the lifecycle policy expires old images, so students cannot remove each other's.
PUSH_ACTIONS = (
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    *READ_ACTIONS,
)
# Untagged images (tags are immutable: what an interrupted or multi-platform push leaves) are never pulled by
# tag, but they bill per GB-month.
UNTAGGED_DAYS = 1


@dataclass(frozen=True)
class ContainersProps:
    names: CourseNames
    students: tuple[str, ...]
    region: str
    class_repository: bool
    keep_images: int


def class_repository_document(scope: Construct, names: CourseNames) -> iam.PolicyDocument:
    """Push and pull one's own repository, named by the caller's student tag (the policy does not grow with the
    class), and pull the course's shared repository, where the instructor pushes base images."""
    stack = Stack.of(scope)
    own = stack.format_arn(service="ecr", resource="repository",
                           resource_name=names.student(CALLER_STUDENT).class_repository)
    shared = stack.format_arn(service="ecr", resource="repository", resource_name=names.class_repository)
    return iam.PolicyDocument(statements=[
        iam.PolicyStatement(sid="PushPullOwnRepository", actions=[*PULL_ACTIONS, *PUSH_ACTIONS], resources=[own]),
        iam.PolicyStatement(sid="PullCourseImages", actions=[*PULL_ACTIONS, *READ_ACTIONS], resources=[shared]),
    ])


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
        self.student_repositories: dict[str, ecr.Repository] = {}
        if props.class_repository:
            self.repository = self._repository(self, "ClassRepository", names.class_repository, props.keep_images)
            # One repository per student, not tags in a shared one: ECR scopes IAM, immutability and lifecycle
            # rules per repository, so alice can neither read, overwrite nor evict (by pushing N images) bob's
            # images. Created here with the users, because ECR creates a repository on push only for a principal
            # allowed ecr:CreateRepository, which would let a student create any repository.
            holder = Construct(self, "StudentRepositories")
            for student in props.students:
                repository = self._repository(holder, student, names.student(student).class_repository,
                                              props.keep_images)
                Tags.of(repository).add(TAG_STUDENT, student)
                self.student_repositories[student] = repository
            policies.append(iam.CfnGroup.PolicyProperty(
                policy_name=CLASS_REPOSITORY_POLICY,
                policy_document=class_repository_document(self, names)))
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

    @staticmethod
    def _repository(scope: Construct, id_: str, name: str, keep_images: int) -> ecr.Repository:
        return ecr.Repository(
            scope,
            id_,
            repository_name=name,
            image_scan_on_push=True,
            # A pushed tag names one image for good: nobody re-points it, and a re-push fails instead of
            # leaving the earlier image untagged (CKV_AWS_51).
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            # CloudFormation deletes the images with the repository: no custom resource needed.
            empty_on_delete=True,
            removal_policy=RemovalPolicy.DESTROY,
            lifecycle_rules=[
                ecr.LifecycleRule(rule_priority=1, description="expire untagged images",
                                  tag_status=ecr.TagStatus.UNTAGGED, max_image_age=Duration.days(UNTAGGED_DAYS)),
                ecr.LifecycleRule(rule_priority=2, description=f"keep the newest {keep_images} images",
                                  tag_status=ecr.TagStatus.ANY, max_image_count=keep_images),
            ],
        )
