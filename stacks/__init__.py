"""Thin stacks, and the one function that composes them into an app."""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import App, Environment, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from labkit.config import LABS, LabConfig
from labkit.naming import TAG_COURSE, TAG_MANAGED_BY
from stacks.containers_stack import LabContainersStack
from stacks.dlami_stack import LabDlamiStack
from stacks.guard_stack import LabGuardStack
from stacks.rekognition_stack import LabRekognitionStack
from stacks.sagemaker_stack import LabSageMakerStack


# Lab name (the construct id users pass to `cdk deploy`) -> its stack class, and what it holds in words.
STACKS: dict[str, tuple[Callable[..., Stack], str]] = {
    "LabSageMaker": (LabSageMakerStack, "SageMaker notebooks"),
    "LabDLAMI": (LabDlamiStack, "GPU workstations with the Deep Learning AMI"),
    "LabContainers": (LabContainersStack, "Deep Learning Containers pull access"),
    "LabRekognition": (LabRekognitionStack, "S3 uploads labelled by Rekognition"),
    "LabGuard": (LabGuardStack, "teardown guard and class budget"),
}


def build_app(app: App, config: LabConfig, *, nag: bool = True) -> App:
    """Add every lab stack of `config` to `app`; the construct id is the lab name users pass to `cdk deploy`."""
    env = Environment(account=config.account, region=config.region)
    names = config.names
    # Stack-level tags (explicit since @aws-cdk/core:explicitStackTags): the guard deletes only stacks that carry
    # the course tag, and IAM conditions DeleteStack on it. They are not part of the template.
    stack_tags = {TAG_COURSE: config.course_id, TAG_MANAGED_BY: "labkit"}
    for lab in LABS:
        stack_class, holds = STACKS[lab]
        stack_class(
            app,
            lab,
            config=config,
            env=env,
            stack_name=names.stack(lab),
            description=f"labkit {config.course_id}: {holds} (expires {config.expires})",
            tags=stack_tags,
        )
    Tags.of(app).add(TAG_COURSE, config.course_id)
    Tags.of(app).add(TAG_MANAGED_BY, "labkit")
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
