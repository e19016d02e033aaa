"""The course's SageMaker notebook demo: status, start, stop, delete and the Jupyter URL of one notebook.

Every function takes a boto3 SageMaker client, so the same code runs against AWS, the emulator and moto.
Stopping is the course rule: a running ml.t3.medium bills by the hour whether or not anyone is using it,
and a stopped notebook still bills for its storage until it is deleted.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

# SageMaker states from which each action is possible; anything else is reported, not forced.
STARTABLE = {"Stopped", "Failed"}
STOPPABLE = {"InService", "Pending", "Updating"}


@dataclass(frozen=True)
class NotebookStatus:
    name: str
    status: str
    instance_type: str
    url: str | None


class NotebookError(RuntimeError):
    """A notebook action that cannot be done now; the message says why in one line."""


def _describe(client: Any, name: str) -> dict[str, Any]:
    try:
        return client.describe_notebook_instance(NotebookInstanceName=name)  # type: ignore[no-any-return]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ValidationException":
            raise NotebookError(f"notebook '{name}' does not exist") from None
        raise


def _wait(client: Any, waiter: str, name: str, delay: int, max_attempts: int) -> None:
    client.get_waiter(waiter).wait(
        NotebookInstanceName=name, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
    )


def status(client: Any, name: str) -> NotebookStatus:
    info = _describe(client, name)
    return NotebookStatus(name, info["NotebookInstanceStatus"], info["InstanceType"], info.get("Url"))


def start(client: Any, name: str, *, wait: bool = True, delay: int = 30, max_attempts: int = 40) -> NotebookStatus:
    current = status(client, name)
    if current.status == "InService":
        return current
    if current.status not in STARTABLE:
        raise NotebookError(f"notebook '{name}' is {current.status}; it can be started only when Stopped")
    client.start_notebook_instance(NotebookInstanceName=name)
    if wait:
        _wait(client, "notebook_instance_in_service", name, delay, max_attempts)
    return status(client, name)


def stop(client: Any, name: str, *, wait: bool = True, delay: int = 30, max_attempts: int = 40) -> NotebookStatus:
    """Stop a notebook; stopping an already stopped notebook is not an error."""
    current = status(client, name)
    if current.status in {"Stopped", "Failed"}:
        return current
    if current.status in STOPPABLE:
        client.stop_notebook_instance(NotebookInstanceName=name)
    elif current.status != "Stopping":
        raise NotebookError(f"notebook '{name}' is {current.status}; it cannot be stopped now")
    if wait:
        _wait(client, "notebook_instance_stopped", name, delay, max_attempts)
    return status(client, name)


def delete(client: Any, name: str, *, wait: bool = True, delay: int = 30, max_attempts: int = 40) -> None:
    """Stop (if needed) and delete a notebook. Work on its volume is lost: archive it to S3 first."""
    stop(client, name, wait=True, delay=delay, max_attempts=max_attempts)
    client.delete_notebook_instance(NotebookInstanceName=name)
    if wait:
        _wait(client, "notebook_instance_deleted", name, delay, max_attempts)


def presigned_url(client: Any, name: str, *, session_minutes: int = 60) -> str:
    """A sign-in URL for Jupyter; it is a credential, so print it for the student and never log it."""
    current = status(client, name)
    if current.status != "InService":
        raise NotebookError(f"notebook '{name}' is {current.status}; start it before opening Jupyter")
    response = client.create_presigned_notebook_instance_url(
        NotebookInstanceName=name, SessionExpirationDurationInSeconds=session_minutes * 60
    )
    return str(response["AuthorizedUrl"])


def main(argv: list[str] | None = None, client: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_scripts.notebook", description=__doc__)
    parser.add_argument("action", choices=["status", "start", "stop", "delete", "url"])
    parser.add_argument("name", help="notebook instance name (see `labctl status`)")
    parser.add_argument("--no-wait", action="store_true", help="return without waiting for the new state")
    args = parser.parse_args(argv)
    client = client or boto3.client("sagemaker")
    try:
        if args.action == "url":
            print(presigned_url(client, args.name))
            return 0
        if args.action == "delete":
            delete(client, args.name, wait=not args.no_wait)
            print(f"{args.name}: deleted")
            return 0
        if args.action == "start":
            result = start(client, args.name, wait=not args.no_wait)
        elif args.action == "stop":
            result = stop(client, args.name, wait=not args.no_wait)
        else:
            result = status(client, args.name)
        print(f"{result.name}: {result.status} ({result.instance_type})")
        return 0
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
