"""LabDLAMI: the class network and one GPU workstation per student."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.class_network import ClassNetwork
from infra.gpu_workstations import GpuWorkstations, WorkstationProps
from labkit.config import LabConfig


class LabDlamiStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: LabConfig, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        settings = config.dlami
        network = ClassNetwork(
            self, "Network", name=config.names.vpc, cidr=settings.vpc_cidr, availability_zone=settings.availability_zone
        )
        workstations = GpuWorkstations(
            self,
            "Workstations",
            props=WorkstationProps(names=config.names, students=config.students, settings=settings, network=network),
        )
        for student, instance in workstations.instances.items():
            CfnOutput(self, f"Instance{student.replace('-', '')}", value=instance.ref,
                      description=f"{student}: GPU instance id (labctl gpu connect {student})")
