"""One small VPC per class: a public subnet and an internet gateway, no NAT gateway.

Built from L1 resources on purpose: `ec2.Vpc` adds a custom resource (restrictDefaultSecurityGroup) and NAT
gateways that bill by the hour; a lab needs neither. Instances reach Session Manager and package mirrors
through their public IP, and no inbound port is open unless the instructor configures SSH.
"""

from __future__ import annotations

import ipaddress

from aws_cdk import Fn, Tags
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.nag import acknowledge


class ClassNetwork(Construct):
    def __init__(self, scope: Construct, id_: str, *, name: str, cidr: str, availability_zone: str | None) -> None:
        super().__init__(scope, id_)
        self.vpc = ec2.CfnVPC(self, "Vpc", cidr_block=cidr, enable_dns_hostnames=True, enable_dns_support=True)
        Tags.of(self).add("Name", name)
        gateway = ec2.CfnInternetGateway(self, "Gateway")
        attachment = ec2.CfnVPCGatewayAttachment(
            self, "GatewayAttachment", vpc_id=self.vpc.ref, internet_gateway_id=gateway.ref
        )
        first_24 = next(ipaddress.IPv4Network(cidr).subnets(new_prefix=24))
        self.subnet = ec2.CfnSubnet(
            self,
            "PublicSubnet",
            vpc_id=self.vpc.ref,
            cidr_block=str(first_24),
            availability_zone=availability_zone or Fn.select(0, Fn.get_azs()),
            map_public_ip_on_launch=True,
        )
        routes = ec2.CfnRouteTable(self, "Routes", vpc_id=self.vpc.ref)
        default_route = ec2.CfnRoute(
            self, "DefaultRoute", route_table_id=routes.ref, destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.ref,
        )
        default_route.node.add_dependency(attachment)
        ec2.CfnSubnetRouteTableAssociation(self, "PublicRoutes", subnet_id=self.subnet.ref, route_table_id=routes.ref)
        acknowledge(
            self.vpc,
            "AwsSolutions-VPC7",
            "The class VPC carries only lab instances' outbound traffic; flow logs would add a log group per class "
            "that bills for storage. Enable them when a course needs network forensics.",
        )
