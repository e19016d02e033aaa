"""`labctl stop-all`, `labctl notebook`, `labctl gpu`, `labctl keys`: acting on the students' machines and keys."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course.config import LabConfig
from lab_scripts import access_keys, instance, notebook
from labkit.deployed import deployed_instances, deployed_notebooks, deployed_users, running_machines
from labkit.events import Info, KeysDeactivated, KeysDeleted, MachineStopped, PhaseFinished, PhaseStarted, Sink, \
    ignore
from labkit.ops.errors import OperationError, RefusedError
from labkit.target import Target


def stop_all(target: Target, config: LabConfig, emit: Sink = ignore) -> list[str]:
    """Stop every running notebook and instance of the course; returns the failures (one line each)."""
    notebooks, instances = running_machines(target, config)
    if not notebooks and not instances:
        emit(Info("nothing of the course is running"))
        return []
    sm, ec2, delay = target.clients("sagemaker"), target.clients("ec2"), target.wait_delay
    requests: list[tuple[str, str, Callable[[], Any], Callable[[], str]]] = [
        ("notebook", name, functools.partial(notebook.stop, sm, name, wait=False),
         lambda name=name: notebook.stop(sm, name, delay=delay).status) for name in notebooks]
    requests += [("instance", i, functools.partial(instance.stop, ec2, i, wait=False),
                  lambda i=i: instance.stop(ec2, i, delay=delay).state) for i in instances]
    failures: list[str] = []
    # Every stop is requested first, so the machines stop together; then each is waited for.
    waits = []
    for kind, name, request, wait in requests:
        try:
            request()
            waits.append((kind, name, wait))
        except (notebook.NotebookError, instance.InstanceError) as exc:
            failures.append(str(exc))
    emit(PhaseStarted("stopping", len(waits)))
    for kind, name, wait in waits:
        try:
            emit(MachineStopped(kind, name, wait()))
        except (notebook.NotebookError, instance.InstanceError) as exc:
            failures.append(str(exc))
    emit(PhaseFinished("stopping"))
    return failures


def _deployed(found: dict[str, str], student: str, what: str, lab: str) -> str:
    if student not in found:
        raise RefusedError(f"{student} has no deployed {what} (`labctl provision` deploys {lab})")
    return found[student]


def notebook_action(target: Target, config: LabConfig, student: str, action: str) -> str:
    """start | stop | status | url of one student's notebook; returns the line to show."""
    sm = target.clients("sagemaker")
    name = _deployed(deployed_notebooks(target, config), student, "notebook", "LabSageMaker")
    if action == "url":
        return notebook.presigned_url(sm, name)
    act: Callable[..., notebook.NotebookStatus] = {
        "start": notebook.start, "stop": notebook.stop, "status": notebook.status}[action]
    state = act(sm, name) if action == "status" else act(sm, name, delay=target.wait_delay)
    return f"{state.name}: {state.status} ({state.instance_type})"


def gpu_action(target: Target, config: LabConfig, student: str, action: str, login_user: str) -> str:
    """start | stop | terminate | status | connect of one student's GPU instance; returns the line to show."""
    instance_id = _deployed(deployed_instances(target, config), student, "GPU instance", "LabDLAMI")
    ec2 = target.clients("ec2")
    if action == "connect":
        return instance.connect_command(instance.status(ec2, instance_id), region=config.region,
                                        login_user=login_user)
    act: Callable[..., instance.InstanceStatus] = {
        "start": instance.start, "stop": instance.stop, "terminate": instance.terminate,
        "status": instance.status}[action]
    state = act(ec2, instance_id) if action == "status" else act(ec2, instance_id, delay=target.wait_delay)
    return f"{student}: {state.instance_id} is {state.state} ({state.instance_type})"


@dataclass(frozen=True)
class IssuedKeyFile:
    student: str
    user: str
    masked_key: str
    path: Path


def container_users(target: Target, config: LabConfig, student: str | None) -> dict[str, str]:
    """Student -> IAM user of the deployed LabContainers stack: every student's, or the one asked for."""
    users = deployed_users(target, config)
    if not users:
        raise RefusedError("LabContainers is not deployed (`labctl provision` deploys it)")
    if student is not None and student not in users:
        raise RefusedError(f"{student} has no container user yet (`labctl provision` adds students new to the "
                           "roster)")
    return {name: users[name] for name in config.students if name in users and student in (None, name)}


def issue_keys(target: Target, config: LabConfig, student: str | None, out: Path, *,
               csv: bool = False) -> list[IssuedKeyFile]:
    """A new key per student, each in its own private file; what is returned never holds the secret."""
    if config.expires < dt.date.today():
        raise RefusedError(f"the course ended on {config.expires}; no new keys (deactivate or delete still work)")
    iam = target.clients("iam")
    users = container_users(target, config, student)
    # Checked for all first, so that a refusal leaves no half-issued class behind.
    holders = [name for name, user in users.items() if access_keys.list_keys(iam, user)]
    if len(holders) == 1:
        raise RefusedError(f"{holders[0]} already holds an access key ({users[holders[0]]}; its secret cannot be read "
                           f"again): `labctl keys delete {holders[0]}` first")
    if holders:
        raise RefusedError(f"{', '.join(holders)} already hold access keys (their secrets cannot be read again): "
                           "`labctl keys delete STUDENT` first for each, or `labctl keys delete` for the class")
    issued = []
    for name, user in users.items():
        key = access_keys.issue(iam, user)
        if csv:
            path = access_keys.write_private(out / f"{name}.csv", access_keys.csv_text(key, config.region))
        else:
            text = access_keys.credentials_text(key, config.course_id, config.region)
            path = access_keys.write_private(out / f"{name}.credentials", text)
        issued.append(IssuedKeyFile(name, user, access_keys.masked(key.access_key_id), path))
    return issued


def key_action(target: Target, config: LabConfig, student: str | None, action: str, out: Path,
               emit: Sink = ignore) -> list[str]:
    """list | deactivate | delete of the students' keys; returns one line per student."""
    iam = target.clients("iam")
    lines = []
    for name, user in container_users(target, config, student).items():
        if action == "list":
            keys = access_keys.list_keys(iam, user)
            listed = ", ".join(f"{access_keys.masked(k.access_key_id)} {k.status}" for k in keys)
            lines.append(f"{name}: {user}: {listed or 'no access keys'}")
        elif action == "deactivate":
            changed = access_keys.deactivate(iam, user)
            emit(KeysDeactivated(user, len(changed)))
            lines.append(f"{name}: deactivated {len(changed)} access key(s) of {user}")
        elif action == "delete":
            deleted = access_keys.delete(iam, user)
            # The local copies hold a dead key now; removing them leaves nothing to mistake for a live one.
            removed = [path for path in (out / f"{name}.credentials", out / f"{name}.csv") if path.exists()]
            for path in removed:
                path.unlink()
            emit(KeysDeleted(user, len(deleted)))
            lines.append(f"{name}: deleted {len(deleted)} access key(s) of {user}, {len(removed)} local file(s)")
        else:
            raise OperationError(f"unknown key action {action!r}")
    return lines
