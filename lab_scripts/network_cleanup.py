"""Removes what keeps a lab VPC from being deleted, after CloudFormation gave up on it (DELETE_FAILED).

In AWS this happens when something outside the stack left a network interface or instance in the VPC; the
emulator also leaves route tables, gateway attachments and interfaces behind. Both end the same way: delete
the blockers, then delete the stack again. Only VPCs of the course (by id from the stack) are touched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

Echo = Callable[[str], None]

_GONE = {"InvalidVpcID.NotFound", "InvalidNetworkInterfaceID.NotFound", "InvalidRouteTableID.NotFound",
         "InvalidInternetGatewayID.NotFound", "InvalidSubnetID.NotFound", "InvalidGroup.NotFound",
         "InvalidAssociationID.NotFound"}


def _quietly(call: Callable[[], Any]) -> None:
    """Run a delete; something already gone is the outcome we wanted."""
    try:
        call()
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in _GONE:
            raise


def clean_vpc(ec2: Any, vpc_id: str, *, echo: Echo = print, wait_delay: int = 15) -> None:
    """Terminate instances, then delete interfaces, gateways, route tables, subnets, security groups, the VPC."""
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    instances = [
        i["InstanceId"]
        for r in ec2.describe_instances(Filters=in_vpc)["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in {"terminated", "shutting-down"}
    ]
    if instances:
        echo(f"{vpc_id}: terminating {len(instances)} instances left in the VPC")
        ec2.terminate_instances(InstanceIds=instances)
        ec2.get_waiter("instance_terminated").wait(
            InstanceIds=instances, WaiterConfig={"Delay": wait_delay, "MaxAttempts": 40}
        )
    for eni in ec2.describe_network_interfaces(Filters=in_vpc)["NetworkInterfaces"]:
        attachment = eni.get("Attachment") or {}
        # A primary interface (device 0) cannot be detached; it goes with its terminated instance.
        if attachment.get("AttachmentId") and attachment.get("DeviceIndex", 0) != 0:
            _quietly(lambda: ec2.detach_network_interface(AttachmentId=attachment["AttachmentId"], Force=True))
        _quietly(lambda: ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"]))
    for gateway in ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])[
        "InternetGateways"
    ]:
        gateway_id = gateway["InternetGatewayId"]
        _quietly(lambda: ec2.detach_internet_gateway(InternetGatewayId=gateway_id, VpcId=vpc_id))
        _quietly(lambda: ec2.delete_internet_gateway(InternetGatewayId=gateway_id))
    for table in ec2.describe_route_tables(Filters=in_vpc)["RouteTables"]:
        if any(a.get("Main") for a in table.get("Associations", [])):
            continue  # the main table goes with the VPC
        for association in table.get("Associations", []):
            _quietly(lambda: ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"]))
        _quietly(lambda: ec2.delete_route_table(RouteTableId=table["RouteTableId"]))
    for subnet in ec2.describe_subnets(Filters=in_vpc)["Subnets"]:
        _quietly(lambda: ec2.delete_subnet(SubnetId=subnet["SubnetId"]))
    for group in ec2.describe_security_groups(Filters=in_vpc)["SecurityGroups"]:
        if group["GroupName"] != "default":
            _quietly(lambda: ec2.delete_security_group(GroupId=group["GroupId"]))
    _quietly(lambda: ec2.delete_vpc(VpcId=vpc_id))
    echo(f"{vpc_id}: deleted with what blocked it")
