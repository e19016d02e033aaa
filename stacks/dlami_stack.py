"""LabDLAMI: the class network and GPU role (once), and LabDLAMI-<student>: one student's GPU workstation."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CrossStackReferences, ReferenceStrength, Stack
from constructs import Construct

from infra.class_network import ClassNetwork
from infra.gpu_workstations import GpuClass, GpuWorkstation, WorkstationProps
from course.config import LabConfig


class LabDlamiStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: LabConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        settings = config.dlami
        network = ClassNetwork(
            self, "Network", name=config.names.vpc, cidr=settings.vpc_cidr, availability_zone=settings.availability_zone
        )
        self.gpu_class = GpuClass(self, "Workstations", names=config.names, settings=settings, network=network)


class LabDlamiStudentStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: LabConfig, student: str, gpu_class: GpuClass,
                 **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        # Exports, not cdk.json's default weak Fn::GetStackOutput: CloudFormation then refuses to delete the class
        # network while a student's instance still uses it, whatever order a teardown or the guard picks.
        CrossStackReferences.of(self).consume(ReferenceStrength.STRONG)
        workstation = GpuWorkstation(
            self, "Workstation", props=WorkstationProps(names=config.names.student(student), settings=config.dlami,
                                                        gpu_class=gpu_class),
        )
        CfnOutput(self, "InstanceId", value=workstation.instance.ref,
                  description=f"{student}: GPU instance id (labctl gpu connect {student})")
