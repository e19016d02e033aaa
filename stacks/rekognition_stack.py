"""LabRekognition: one class bucket whose image uploads are labelled by Amazon Rekognition."""

from __future__ import annotations

import dataclasses
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.image_labeler import ImageLabeler, ImageLabelerProps
from lab_scripts.rekognition_fn.handler import Analysis, Settings
from course.config import LabConfig


class LabRekognitionStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: LabConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        settings = Settings(analysis=Analysis(**dataclasses.asdict(config.rekognition)))
        lab = ImageLabeler(
            self,
            "Labels",
            props=ImageLabelerProps(names=config.names.rekognition, iam_path=config.names.iam_path, settings=settings),
        )
        CfnOutput(self, "UploadBucket", value=lab.bucket.bucket_name,
                  description=f"upload images under {settings.uploads_prefix}; results appear under "
                              f"{settings.results_prefix}")
        CfnOutput(self, "FunctionName", value=lab.function.function_name, description="labelling Lambda function")
        CfnOutput(self, "FailedEventsQueue", value=lab.dead_letters.queue_url,
                  description="S3 events the function failed on after its retries")
