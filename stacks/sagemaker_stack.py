"""LabSageMaker: one notebook per student of the course."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.lab_notebook import LabNotebook, NotebookProps
from labkit.config import LabConfig


class LabSageMakerStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: LabConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        settings = config.sagemaker
        for student in config.students:
            lab = LabNotebook(
                self,
                student,
                props=NotebookProps(
                    names=config.names.student(student),
                    iam_path=config.names.iam_path,
                    instance_type=settings.instance_type,
                    volume_gb=settings.volume_gb,
                    idle_minutes=settings.idle_minutes,
                ),
            )
            CfnOutput(lab, "NotebookName", value=lab.notebook.attr_notebook_instance_name,
                      description=f"{student}: SageMaker notebook instance")
            CfnOutput(lab, "BucketName", value=lab.bucket.bucket_name, description=f"{student}: lab bucket")
