"""Thin stacks, and the one function that composes them into an app."""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import App, Environment, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from labkit.config import LABS, LabConfig
from labkit.naming import TAG_COURSE, TAG_MANAGED_BY
from stacks.containers_stack import LabContainersStack
from stacks.sagemaker_stack import LabSageMakerStack


# Lab name (the construct id users pass to `cdk deploy`) -> its stack and what it provides.
STACKS: dict[str, tuple[Callable[..., Stack], str]] = {
    "LabSageMaker": (LabSageMakerStack, "SageMaker notebooks"),
    "LabContainers": (LabContainersStack, "Deep Learning Containers pull access"),
}


def build_app(app: App, config: LabConfig, *, nag: bool = True) -> App:
    """Add every lab stack of `config` to `app`; the construct id is the lab name users pass to `cdk deploy`."""
    env = Environment(account=config.account, region=config.region)
    names = config.names
    for lab in LABS:
        stack_class, provides = STACKS[lab]
        stack_class(
            app,
            lab,
            config=config,
            env=env,
            stack_name=names.stack(lab),
            description=f"labkit {config.course_id}: {provides} (expires {config.expires})",
        )
    Tags.of(app).add(TAG_COURSE, config.course_id)
    Tags.of(app).add(TAG_MANAGED_BY, "labkit")
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
