"""LabContainers: pull-only access to AWS Deep Learning Containers for each student of the course."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.lab_containers import ContainerAccess, ContainersProps
from labkit.config import LabConfig


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
        for student, user in access.users.items():
            CfnOutput(user, "UserName", value=user.user_name,
                      description=f"{student}: IAM user (labctl keys issue {student})")
        if access.repository is not None:
            CfnOutput(self, "ClassRepositoryUri", value=access.repository.repository_uri,
                      description="class ECR repository students push to")
