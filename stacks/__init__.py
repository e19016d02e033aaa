"""Thin stacks, and the one function that composes them into an app."""

from __future__ import annotations

from typing import Any

from aws_cdk import App, CfnOutput, Environment, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from course.config import LabConfig
from course.layout import StackUnit
from course.naming import CLASSROOM, TAG_COURSE, TAG_MANAGED_BY, TAG_STUDENT
from stacks.classroom_stack import LabClassroomStack
from stacks.containers_stack import LabContainersStack
from infra.gpu_workstations import GpuWorkstation, WorkstationProps
from stacks.dlami_stack import LabDlamiStack, LabDlamiStudentStack
from stacks.guard_stack import LabGuardStack
from stacks.rekognition_stack import LabRekognitionStack
from stacks.sagemaker_stack import LabSageMakerStack

# What each stack holds, in words (its description): class stacks by lab, students' stacks by lab.
CLASS_HOLDS = {
    "LabDLAMI": "class network and GPU instance role",
    "LabContainers": "students' IAM users: Deep Learning Containers pulls and access to their own labs",
    "LabRekognition": "S3 uploads labelled by Rekognition",
    "LabGuard": "teardown guard and class budget",
    CLASSROOM: "stack set that deploys the labs to each student's own account",
}
STUDENT_HOLDS = {
    "LabSageMaker": "SageMaker notebook of {student}",
    "LabDLAMI": "GPU workstation with the Deep Learning AMI of {student}",
}
# Solo mode: one learner, one stack per lab.
SOLO_HOLDS = {
    "LabSageMaker": "your SageMaker notebook and its bucket (kept by cdk destroy)",
    "LabDLAMI": "your GPU workstation with the Deep Learning AMI, and its network",
}


def _stack(app: App, unit: StackUnit, config: LabConfig, built: dict[str, Stack], *, nag: bool, validation: bool,
           **common: Any) -> Stack:
    if unit.lab == CLASSROOM:
        return LabClassroomStack(app, unit.construct_id, config=config, nag=nag, validation=validation, **common)
    if unit.lab == "LabSageMaker":
        assert unit.student is not None
        return LabSageMakerStack(app, unit.construct_id, config=config, student=unit.student, **common)
    if unit.lab == "LabDLAMI" and unit.solo:
        assert unit.student is not None
        return _solo_dlami(app, unit, config, **common)
    if unit.lab == "LabDLAMI" and unit.student is not None:
        class_stack = built["LabDLAMI"]
        assert isinstance(class_stack, LabDlamiStack)
        return LabDlamiStudentStack(app, unit.construct_id, config=config, student=unit.student,
                                    gpu_class=class_stack.gpu_class, **common)
    stack_class = {"LabDLAMI": LabDlamiStack, "LabContainers": LabContainersStack,
                   "LabRekognition": LabRekognitionStack, "LabGuard": LabGuardStack}[unit.lab]
    return stack_class(app, unit.construct_id, config=config, **common)


def _solo_dlami(app: App, unit: StackUnit, config: LabConfig, **common: Any) -> Stack:
    """The learner's LabDLAMI: network, GPU role and the one workstation in one stack, so `cdk deploy LabDLAMI`
    and `cdk destroy LabDLAMI` are the whole lab (no class to share the network with)."""
    assert unit.student is not None
    stack = LabDlamiStack(app, unit.construct_id, config=config, **common)
    workstation = GpuWorkstation(stack, "Workstation", props=WorkstationProps(
        names=config.names.student(unit.student), settings=config.dlami, gpu_class=stack.gpu_class))
    CfnOutput(stack, "InstanceId", value=workstation.instance.ref,
              description="your GPU instance id (labctl gpu connect me)")
    return stack


def build_app(app: App, config: LabConfig, *, nag: bool = True, validation: bool = True) -> App:
    """Add every stack of `config` to `app`. Construct ids are what users pass to `cdk deploy`: `LabGuard` for a
    class stack, `LabSageMaker-alice` for a student's (`cdk deploy 'LabSageMaker*'` for the whole class); in solo
    mode every stack is named like its lab (`cdk deploy LabSageMaker`).

    Account-per-student mode synthesizes the student-account template while building (LabClassroom), with cdk-nag
    if `nag` and CDK's CloudFormation validation if `validation` (pass what `app` was given)."""
    env = Environment(account=config.account, region=config.region)
    built: dict[str, Stack] = {}
    for unit in config.stacks():
        # Stack-level tags (explicit since @aws-cdk/core:explicitStackTags): the guard deletes only stacks that
        # carry the course tag, and IAM conditions DeleteStack on it. They are not part of the template.
        tags = {TAG_COURSE: config.course_id, TAG_MANAGED_BY: "labkit"}
        holds = CLASS_HOLDS.get(unit.lab, "")
        if unit.student is not None:
            tags[TAG_STUDENT] = unit.student
            holds = (SOLO_HOLDS if unit.solo else STUDENT_HOLDS)[unit.lab].format(student=unit.student)
        built[unit.construct_id] = _stack(
            app, unit, config, built, nag=nag, validation=validation,
            env=env,
            stack_name=unit.stack_name,
            description=f"labkit {config.course_id}: {holds} (expires {config.expires})",
            tags=tags,
        )
    Tags.of(app).add(TAG_COURSE, config.course_id)
    Tags.of(app).add(TAG_MANAGED_BY, "labkit")
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
