"""Thin stacks, and the one function that composes them into an app."""

from __future__ import annotations

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from labkit.config import LabConfig
from labkit.naming import TAG_COURSE, TAG_MANAGED_BY
from stacks.containers_stack import LabContainersStack
from stacks.sagemaker_stack import LabSageMakerStack


def build_app(app: App, config: LabConfig, *, nag: bool = True) -> App:
    """Add every lab stack of `config` to `app`; the construct id is the lab name users pass to `cdk deploy`."""
    env = Environment(account=config.account, region=config.region)
    names = config.names
    LabSageMakerStack(
        app,
        "LabSageMaker",
        config=config,
        env=env,
        stack_name=names.stack("LabSageMaker"),
        description=f"labkit {config.course_id}: SageMaker notebooks (expires {config.expires})",
    )
    LabContainersStack(
        app,
        "LabContainers",
        config=config,
        env=env,
        stack_name=names.stack("LabContainers"),
        description=f"labkit {config.course_id}: Deep Learning Containers pull access (expires {config.expires})",
    )
    Tags.of(app).add(TAG_COURSE, config.course_id)
    Tags.of(app).add(TAG_MANAGED_BY, "labkit")
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
