"""LabContainers: pull-only access to AWS Deep Learning Containers for each student of the course."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.lab_containers import ContainerAccess, ContainersProps
from course.config import LabConfig


class LabContainersStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: LabConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        settings = config.containers
        access = ContainerAccess(
            self,
            "Containers",
            props=ContainersProps(
                names=config.names,
                students=config.students,
                region=config.region,
                class_repository=settings.class_repository,
                keep_images=settings.keep_images,
            ),
        )
        CfnOutput(self, "GroupName", value=access.group.group_name, description="IAM group of the container users")
        # One pattern, not an output per user: CloudFormation allows 200 outputs per stack, fewer than a class.
        CfnOutput(self, "UserNames", value=config.names.student("<student>").containers_user,
                  description="students' IAM users (labctl keys issue STUDENT, labctl handout)")
        if access.repository is not None:
            CfnOutput(self, "ClassRepositoryUri", value=access.repository.repository_uri,
                      description="course ECR repository: the instructor pushes base images, students pull them")
            # One pattern, like the users: each student pushes to their own repository below the course's.
            CfnOutput(self, "StudentRepositoryUris",
                      value=f"{self.account}.dkr.ecr.{self.region}.{self.url_suffix}/"
                            f"{config.names.student('<student>').class_repository}",
                      description="students' own ECR repositories (push and pull by the student only)")
