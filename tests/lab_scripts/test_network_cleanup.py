"""Clearing a VPC that CloudFormation could not delete: everything in it goes, other VPCs stay."""

from __future__ import annotations

from typing import Any

from lab_scripts.network_cleanup import clean_vpc
from tests.lab_scripts.conftest import launchable_image


def build_vpc(ec2: Any) -> str:
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.0.0/24")["Subnet"]["SubnetId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    group = ec2.create_security_group(GroupName="lab", Description="lab", VpcId=vpc)["GroupId"]
    image = launchable_image(ec2)
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet, SecurityGroupIds=[group])
    return str(vpc)


def test_everything_in_the_vpc_is_removed(aws: Any) -> None:
    ec2 = aws("ec2")
    vpc = build_vpc(ec2)
    other = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    lines: list[str] = []
    clean_vpc(ec2, vpc, echo=lines.append, wait_delay=1)
    remaining = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    assert vpc not in remaining and other in remaining
    states = {i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    assert states == {"terminated"}
    assert not ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"]
    assert lines[0].endswith("terminating 1 instances left in the VPC")


def test_cleaning_a_deleted_vpc_is_harmless(aws: Any) -> None:
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    clean_vpc(ec2, vpc, echo=lambda line: None, wait_delay=1)
    clean_vpc(ec2, vpc, echo=lambda line: None, wait_delay=1)
