"""What of the course is deployed now, read from CloudFormation and the services: the lookups operations share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from course.config import LabConfig
from course.layout import LABS, PER_STUDENT_LABS, StackUnit
from course.naming import TAG_COURSE
from lab_scripts import notebook
from lab_scripts.inventory import live_stack_names, physical_ids_by_student
from lab_scripts.retained import STUCK, LeftBehind, find_left_behind
from labkit.target import Target, parallel

def stack_status(target: Target, stack_name: str) -> str | None:
    """The stack's status, or None when it does not exist (or is deleted)."""
    try:
        status = target.clients("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return None if status == "DELETE_COMPLETE" else str(status)


def stack_resources(target: Target, stack_name: str) -> list[dict[str, Any]] | None:
    """The stack's resources, or None when the stack does not exist."""
    if stack_status(target, stack_name) is None:
        return None
    pages = target.clients("cloudformation").get_paginator("list_stack_resources").paginate(StackName=stack_name)
    return [row for page in pages for row in page["StackResourceSummaries"] if row.get("LogicalResourceId")]


def left_behind(target: Target, config: LabConfig) -> LeftBehind:
    """What no deploy goes on from: course buckets no live stack holds, and stacks stuck in a state (STUCK)."""
    return find_left_behind(target.clients("cloudformation"), target.clients("s3"), config.names)


def stuck_stacks(target: Target, config: LabConfig, found: LeftBehind | None = None) -> dict[str, str]:
    """Stack name -> status, for the course's stacks in a state no deploy can go on from (retained.STUCK)."""
    return {stack.name: stack.status for stack in (found or left_behind(target, config)).stacks}


def physical_of(resources: list[dict[str, Any]], kind: str) -> list[str]:
    return [row["PhysicalResourceId"] for row in resources if row["ResourceType"] == kind]


def live_resources(target: Target, config: LabConfig) -> dict[str, list[dict[str, Any]]]:
    """Stack name -> resources, for each of the course's stacks that is deployed."""
    target.clients("cloudformation")
    names = [unit.stack_name for unit in config.stacks()]
    found = dict(zip(names, parallel(lambda name: stack_resources(target, name), names)))
    return {name: resources for name, resources in found.items() if resources is not None}


def owned(target: Target, config: LabConfig) -> set[str]:
    """Physical ids of everything the course's live stacks hold."""
    return {row.get("PhysicalResourceId", "") for resources in live_resources(target, config).values()
            for row in resources}


def course_tagged(tags: list[dict[str, str]], config: LabConfig) -> bool:
    return {"Key": TAG_COURSE, "Value": config.course_id} in tags


def retained_buckets(target: Target, config: LabConfig, found: LeftBehind | None = None) -> list[str]:
    """Course buckets (course-tagged) no live stack holds: kept with student work when the guard deleted their
    stack, or by a plain `cdk destroy` of a solo learner's notebook stack."""
    return [bucket.name for bucket in (found or left_behind(target, config)).buckets]


def retained_users(target: Target, config: LabConfig) -> list[str]:
    """Course users (under its IAM path, course-tagged) that no live stack holds."""
    iam = target.clients("iam")
    pages = iam.get_paginator("list_users").paginate(PathPrefix=config.names.iam_path)
    mine = owned(target, config)
    return [user["UserName"] for page in pages for user in page["Users"] if user["UserName"] not in mine
            and course_tagged(iam.list_user_tags(UserName=user["UserName"])["Tags"], config)]


def lab_physical_ids(target: Target, config: LabConfig, lab: str, kind: str) -> dict[str, str]:
    """Student -> physical id of their `kind` resource, across every stack of `lab`."""
    target.clients("cloudformation")
    found: dict[str, str] = {}
    for ids in parallel(lambda name: physical_ids_by_student(target.clients, name, kind), config.lab_stacks(lab)):
        found.update(ids)
    return found


def deployed_notebooks(target: Target, config: LabConfig) -> dict[str, str]:
    """Student -> deployed notebook name, from the deployed stacks (the emulator picks its own names)."""
    arns = lab_physical_ids(target, config, "LabSageMaker", "AWS::SageMaker::NotebookInstance")
    return {student: arn.rsplit("/", 1)[-1] for student, arn in arns.items()}


def deployed_instances(target: Target, config: LabConfig) -> dict[str, str]:
    """Student -> GPU instance id, from the deployed LabDLAMI stacks."""
    return lab_physical_ids(target, config, "LabDLAMI", "AWS::EC2::Instance")


def deployed_users(target: Target, config: LabConfig) -> dict[str, str]:
    """Student -> IAM user name, from the deployed LabContainers stack."""
    return lab_physical_ids(target, config, "LabContainers", "AWS::IAM::User")


def running_machines(target: Target, config: LabConfig) -> tuple[list[str], list[str]]:
    """(notebook names, instance ids) of the course now running: from the deployed stacks and the course tag."""
    sm, ec2 = target.clients("sagemaker"), target.clients("ec2")
    notebooks = set(deployed_notebooks(target, config).values())
    for page in sm.get_paginator("list_notebook_instances").paginate(NameContains=config.course_id):
        for found in page["NotebookInstances"]:
            if course_tagged(sm.list_tags(ResourceArn=found["NotebookInstanceArn"])["Tags"], config):
                notebooks.add(found["NotebookInstanceName"])
    running_notebooks = sorted(name for name in notebooks
                               if notebook.status(sm, name).status in notebook.STOPPABLE | {"Stopping"})
    instances = set(deployed_instances(target, config).values())
    tagged = [{"Name": f"tag:{TAG_COURSE}", "Values": [config.course_id]}]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=tagged):
        instances |= {found["InstanceId"] for reservation in page["Reservations"] for found in reservation["Instances"]}
    running_instances = []
    if instances:
        pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=sorted(instances))
        running_instances = sorted(found["InstanceId"] for page in pages for reservation in page["Reservations"]
                                   for found in reservation["Instances"]
                                   if found["State"]["Name"] in {"pending", "running", "stopping"})
    return running_notebooks, running_instances


def dropped_out_stacks(target: Target, config: LabConfig, labs: Iterable[str] = LABS) -> list[StackUnit]:
    """Live, course-tagged stacks of students no longer in the course file (they left the class): the app no
    longer builds them, so `cdk destroy` cannot see them, but their work and machines are still there."""
    known = {unit.stack_name for unit in config.stacks()}
    cfn = target.clients("cloudformation")
    live = live_stack_names(cfn)
    dropped = []
    for lab in (lab for lab in labs if lab in PER_STUDENT_LABS and not config.classroom.per_account):
        prefix = f"{config.names.stack(lab)}-"
        for name in sorted(live):
            if name.startswith(prefix) and name not in known:
                tags = cfn.describe_stacks(StackName=name)["Stacks"][0].get("Tags", [])
                if course_tagged(tags, config):
                    dropped.append(StackUnit(lab, name.removeprefix(prefix), name))
    return dropped


def stacks_to_destroy(target: Target, config: LabConfig, labs: Iterable[str] = LABS,
                      students: Sequence[str] | None = None) -> list[StackUnit]:
    """The stacks of `labs` (and of students who left the course file); with `students`, only theirs."""
    units = config.stacks(labs) + dropped_out_stacks(target, config, labs)
    return units if students is None else [unit for unit in units if unit.student in students]
