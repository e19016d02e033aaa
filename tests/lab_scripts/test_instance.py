"""The GPU instance demo script under moto: lifecycle, connect commands, clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from lab_scripts import instance
from tests.lab_scripts.conftest import launchable_image

FAST = {"delay": 1}


@pytest.fixture
def ec2(aws: Any) -> Any:
    return aws("ec2")


def launch(ec2: Any, **extra: Any) -> str:
    image = launchable_image(ec2)
    return str(ec2.run_instances(ImageId=image, InstanceType="g4dn.xlarge", MinCount=1, MaxCount=1, **extra)[
        "Instances"][0]["InstanceId"])


def test_stop_start_terminate(ec2: Any) -> None:
    instance_id = launch(ec2)
    assert instance.status(ec2, instance_id).state == "running"
    assert instance.stop(ec2, instance_id, **FAST).state == "stopped"
    assert instance.stop(ec2, instance_id, **FAST).state == "stopped"
    assert instance.start(ec2, instance_id, **FAST).state == "running"
    assert instance.terminate(ec2, instance_id, **FAST).state == "terminated"


def test_start_of_terminated_instance_is_refused(ec2: Any) -> None:
    instance_id = launch(ec2)
    instance.terminate(ec2, instance_id, **FAST)
    with pytest.raises(instance.InstanceError, match="is terminated; it can be started only when stopped"):
        instance.start(ec2, instance_id, **FAST)


def test_unknown_instance_is_a_one_line_error(ec2: Any) -> None:
    with pytest.raises(instance.InstanceError, match="instance 'i-0123456789abcdef0' does not exist"):
        instance.status(ec2, "i-0123456789abcdef0")


def test_connect_uses_session_manager_without_a_key(ec2: Any) -> None:
    state = instance.status(ec2, launch(ec2))
    assert instance.connect_command(state, region="us-east-1") == (
        f"aws ssm start-session --region us-east-1 --target {state.instance_id}")


def test_connect_uses_ssh_when_the_instance_has_a_key(ec2: Any) -> None:
    ec2.create_key_pair(KeyName="teacher")
    state = instance.status(ec2, launch(ec2, KeyName="teacher"))
    assert state.public_ip
    assert instance.connect_command(state, region="us-east-1") == f"ssh -i ~/.ssh/teacher.pem ubuntu@{state.public_ip}"


def test_connect_needs_a_running_instance(ec2: Any) -> None:
    instance_id = launch(ec2)
    stopped = instance.stop(ec2, instance_id, **FAST)
    with pytest.raises(instance.InstanceError, match="start it before connecting"):
        instance.connect_command(stopped, region="us-east-1")


def test_command_line(ec2: Any, capsys: pytest.CaptureFixture[str]) -> None:
    instance_id = launch(ec2)
    assert instance.main(["status", instance_id], client=ec2) == 0
    assert capsys.readouterr().out.strip() == f"{instance_id}: running (g4dn.xlarge)"
    assert instance.main(["connect", "i-0aaaaaaaaaaaaaaaa"], client=ec2) == 1
    assert capsys.readouterr().err.strip() == "error: instance 'i-0aaaaaaaaaaaaaaaa' does not exist"
