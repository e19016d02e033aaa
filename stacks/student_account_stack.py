"""LabStudent: what one student's own account holds in account-per-student mode, deployed by the class's stack set.

One template for every account of the OU: written for a placeholder student, with no account or region in it
(unique names are built from the account and region it lands in), so it is synthesized once whatever the class
size. Everything sits in this one stack: a stack set deploys a template, so there are no cross-stack references.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, BootstraplessSynthesizer, CfnOutput, Stack
from constructs import Construct

from infra.class_network import ClassNetwork
from infra.gpu_workstations import GpuClass, GpuWorkstation, WorkstationProps
from infra.guard_reach import GuardStopRole
from infra.lab_notebook import LabNotebook, NotebookProps
from course.config import LabConfig
from course.naming import PLACEHOLDER_STUDENT, CourseNames


class LabStudentAccountStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: LabConfig, **kwargs: Any) -> None:
        # No env, and no bootstrap: the students' accounts have no CDK bootstrap bucket, roles or version
        # parameter, and CloudFormation runs the template as it is. This synthesizer also refuses assets.
        super().__init__(scope, id_, synthesizer=BootstraplessSynthesizer(), **kwargs)
        # Tokens, not the course's account and region: the bucket name must be unique in each student's account.
        names = CourseNames(config.course_id, Aws.ACCOUNT_ID, Aws.REGION)
        student = names.student(PLACEHOLDER_STUDENT)
        notebook = LabNotebook(self, "Notebook", props=NotebookProps(
            names=student, iam_path=names.iam_path, settings=config.sagemaker))
        settings = config.dlami
        network = ClassNetwork(self, "Network", name=names.vpc, cidr=settings.vpc_cidr,
                               availability_zone=settings.availability_zone)
        gpu_class = GpuClass(self, "Workstations", names=names, settings=settings, network=network)
        workstation = GpuWorkstation(self, "Workstation", props=WorkstationProps(
            names=student, settings=settings, gpu_class=gpu_class))
        GuardStopRole(self, "GuardReach", names=names, class_account=config.account)
        CfnOutput(self, "NotebookName", value=notebook.notebook.attr_notebook_instance_name,
                  description="SageMaker notebook instance")
        CfnOutput(self, "BucketName", value=notebook.bucket.bucket_name, description="lab bucket")
        CfnOutput(self, "InstanceId", value=workstation.instance.ref, description="GPU instance id")
