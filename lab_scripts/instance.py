"""The course's GPU instance demo: status, start, stop, terminate, and how to connect.

Every function takes a boto3 EC2 client. A running p3.2xlarge costs about 3 USD an hour; a stopped one still
pays for its EBS volume; only terminate ends both (and deletes the volume: copy work to S3 first).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError


@dataclass(frozen=True)
class InstanceStatus:
    instance_id: str
    state: str
    instance_type: str
    public_ip: str | None
    key_name: str | None


class InstanceError(RuntimeError):
    """An instance action that cannot be done now; the message says why in one line."""


def status(ec2: Any, instance_id: str) -> InstanceStatus:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] in {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"}:
            raise InstanceError(f"instance '{instance_id}' does not exist") from None
        raise
    info = reservations[0]["Instances"][0]
    return InstanceStatus(
        instance_id, info["State"]["Name"], info["InstanceType"], info.get("PublicIpAddress"), info.get("KeyName")
    )


def _wait(ec2: Any, waiter: str, instance_id: str, delay: int) -> None:
    ec2.get_waiter(waiter).wait(InstanceIds=[instance_id], WaiterConfig={"Delay": delay, "MaxAttempts": 60})


def start(ec2: Any, instance_id: str, *, wait: bool = True, delay: int = 15) -> InstanceStatus:
    current = status(ec2, instance_id)
    if current.state == "running":
        return current
    if current.state != "stopped":
        raise InstanceError(f"instance '{instance_id}' is {current.state}; it can be started only when stopped")
    ec2.start_instances(InstanceIds=[instance_id])
    if wait:
        _wait(ec2, "instance_running", instance_id, delay)
    return status(ec2, instance_id)


def stop(ec2: Any, instance_id: str, *, wait: bool = True, delay: int = 15) -> InstanceStatus:
    """Stop an instance; stopping a stopped instance is not an error."""
    current = status(ec2, instance_id)
    if current.state in {"stopped", "terminated"}:
        return current
    if current.state in {"running", "pending"}:
        ec2.stop_instances(InstanceIds=[instance_id])
    elif current.state != "stopping":
        raise InstanceError(f"instance '{instance_id}' is {current.state}; it cannot be stopped now")
    if wait:
        _wait(ec2, "instance_stopped", instance_id, delay)
    return status(ec2, instance_id)


def terminate(ec2: Any, instance_id: str, *, wait: bool = True, delay: int = 15) -> InstanceStatus:
    if status(ec2, instance_id).state != "terminated":
        ec2.terminate_instances(InstanceIds=[instance_id])
        if wait:
            _wait(ec2, "instance_terminated", instance_id, delay)
    return status(ec2, instance_id)


def connect_command(current: InstanceStatus, *, region: str, login_user: str = "ubuntu",
                    key_path: str | None = None) -> str:
    """The command a student runs: Session Manager by default, SSH only when the instance has a key pair."""
    if current.state != "running":
        raise InstanceError(f"instance '{current.instance_id}' is {current.state}; start it before connecting")
    if current.key_name and current.public_ip:
        key = key_path or f"~/.ssh/{current.key_name}.pem"
        return f"ssh -i {shlex.quote(key) if key_path else key} {login_user}@{current.public_ip}"
    return session_command(current.instance_id, region=region)


def session_command(instance_id: str, *, region: str, profile: str | None = None) -> str:
    """Session Manager: a shell on the instance with no inbound port open."""
    return f"aws ssm start-session --region {region} --target {instance_id}" + (f" --profile {profile}" if profile
                                                                               else "")


def main(argv: list[str] | None = None, client: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_scripts.instance", description=__doc__)
    parser.add_argument("action", choices=["status", "start", "stop", "terminate", "connect"])
    parser.add_argument("instance_id")
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    ec2 = client or boto3.client("ec2", region_name=args.region)
    try:
        if args.action == "connect":
            print(connect_command(status(ec2, args.instance_id), region=ec2.meta.region_name))
            return 0
        action = {"status": status, "start": start, "stop": stop, "terminate": terminate}[args.action]
        result = action(ec2, args.instance_id)
        print(f"{result.instance_id}: {result.state} ({result.instance_type})")
        return 0
    except InstanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
