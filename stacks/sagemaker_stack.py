"""LabSageMaker-<student>: one student's notebook, its bucket, role and idle auto-stop."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.lab_notebook import LabNotebook, NotebookProps
from course.config import LabConfig


class LabSageMakerStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: LabConfig, student: str, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        lab = LabNotebook(self, "Notebook", props=NotebookProps(
            names=config.names.student(student), iam_path=config.names.iam_path, settings=config.sagemaker,
            keep_bucket=config.classroom.solo))
        CfnOutput(self, "NotebookName", value=lab.notebook.attr_notebook_instance_name,
                  description=f"{student}: SageMaker notebook instance")
        CfnOutput(self, "BucketName", value=lab.bucket.bucket_name, description=f"{student}: lab bucket")
