"""The DLC demo script: real image URIs per region, a login that never shows the password, docker run lines."""

from __future__ import annotations

import base64
import subprocess
from typing import Any

import pytest
from botocore.stub import Stubber

from lab_scripts import dlc
from lab_scripts.dlc import DlcError, find_image

US_EAST_1 = "763104351884.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize(("framework", "version", "device", "uri"), [
    ("pytorch", "2.8", "gpu", f"{US_EAST_1}/pytorch-training:2.8.0-gpu-py312-cu129-ubuntu22.04-ec2"),
    ("PyTorch", "2.6.0", "cpu", f"{US_EAST_1}/pytorch-training:2.6.0-cpu-py312-ubuntu22.04-ec2"),
    ("tensorflow", None, "gpu", f"{US_EAST_1}/tensorflow-training:2.16.2-gpu-py310-cu123-ubuntu20.04-ec2"),
    ("mxnet", "1.9", "gpu", f"{US_EAST_1}/mxnet-training:1.9.0-gpu-py38-cu112-ubuntu20.04-ec2"),
    ("mxnet", None, "cpu", f"{US_EAST_1}/mxnet-training:1.9.0-cpu-py38-ubuntu20.04-ec2"),
])
def test_image_uris_are_the_published_tags(framework: str, version: str | None, device: str, uri: str) -> None:
    assert find_image(framework, version, device).uri("us-east-1") == uri


def test_newest_version_is_the_default_and_cuda_13_warns_about_v100() -> None:
    newest = find_image("pytorch")
    assert newest.version == "2.9.0" and "V100" in newest.note
    assert find_image("pytorch", "2").version == "2.9.0"
    assert find_image("pytorch", "2.8").note == "" and find_image("pytorch", device="cpu").note == ""


@pytest.mark.parametrize(("region", "host"), [
    ("eu-west-1", "763104351884.dkr.ecr.eu-west-1.amazonaws.com"),
    ("af-south-1", "626614931356.dkr.ecr.af-south-1.amazonaws.com"),
    ("ap-east-1", "871362719292.dkr.ecr.ap-east-1.amazonaws.com"),
    ("ap-northeast-3", "364406365360.dkr.ecr.ap-northeast-3.amazonaws.com"),
    ("ap-southeast-3", "907027046896.dkr.ecr.ap-southeast-3.amazonaws.com"),
    ("eu-south-1", "692866216735.dkr.ecr.eu-south-1.amazonaws.com"),
    ("me-south-1", "217643126080.dkr.ecr.me-south-1.amazonaws.com"),
    ("me-central-1", "914824155844.dkr.ecr.me-central-1.amazonaws.com"),
])
def test_registry_account_per_region(region: str, host: str) -> None:
    assert dlc.registry_host(region) == host


@pytest.mark.parametrize(("call", "message"), [
    (lambda: find_image("caffe"), "unknown framework 'caffe' (known: mxnet, pytorch, tensorflow)"),
    (lambda: find_image("pytorch", "1.13"), "no pytorch 1.13 image in the course table (known: 2.6.0, 2.7.1,"),
    (lambda: find_image("tensorflow", "2.1"), "no tensorflow 2.1 image"),
    (lambda: find_image("mxnet", device="tpu"), "device 'tpu' must be one of cpu, gpu"),
    (lambda: dlc.registry_host("ca-west-1"), "region 'ca-west-1' has no Deep Learning Containers registry"),
    (lambda: dlc.run_command(find_image("mxnet"), "us-east-1", "/etc/passwd.py"), "must be a .py file inside"),
    (lambda: dlc.run_command(find_image("mxnet"), "us-east-1", "../x.py"), "must be a .py file inside"),
])
def test_bad_input_is_one_line(call: Any, message: str) -> None:
    with pytest.raises(DlcError) as caught:
        call()
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_docker_run_uses_gpus_only_for_gpu_images(tmp_path: Any) -> None:
    folder = tmp_path / "my lab"
    gpu = dlc.run_command(find_image("mxnet", device="gpu"), "us-east-1", "train_mnist.py", str(folder))
    assert gpu == (
        f"docker run --rm --gpus all --shm-size 2g -v '{folder}:/workspace' -w /workspace "
        f"{US_EAST_1}/mxnet-training:1.9.0-gpu-py38-cu112-ubuntu20.04-ec2 python train_mnist.py"
    )
    cpu = dlc.run_command(find_image("pytorch", device="cpu"), "eu-south-1", "src/train.py")
    assert "--gpus" not in cpu and cpu.endswith("python src/train.py") and "692866216735.dkr.ecr.eu-south-1" in cpu


def secrets_of(ecr: Any, account: str) -> list[str]:
    token = ecr.get_authorization_token(registryIds=[account])["authorizationData"][0]["authorizationToken"]
    return [token, base64.b64decode(token).decode().partition(":")[2]]


def test_login_prints_a_command_and_never_the_password(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ecr = aws("ecr")
    assert dlc.main(["login", "--region", "us-east-1"], client=ecr) == 0
    out, err = capsys.readouterr()
    assert out.strip() == (f"aws ecr get-login-password --region us-east-1 | "
                           f"docker login --username AWS --password-stdin {US_EAST_1}")
    for secret in secrets_of(ecr, "763104351884"):
        assert secret not in out + err


def test_exec_login_hands_the_password_to_docker_on_stdin_only(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ecr = aws("ecr")
    calls: list[tuple[list[str], str]] = []

    def docker(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append((argv, kwargs["input"]))
        return subprocess.CompletedProcess(argv, 0, "Login Succeeded\n", "")

    assert dlc.main(["login", "--region", "us-east-1", "--exec"], client=ecr, run=docker) == 0
    token, password = secrets_of(ecr, "763104351884")
    (argv, stdin), = calls
    assert stdin == password and password not in " ".join(argv) and argv[-1] == US_EAST_1
    out, err = capsys.readouterr()
    assert out == f"logged in to {US_EAST_1}\n" and password not in out + err and token not in out + err


def test_exec_login_failures_are_one_line(aws: Any) -> None:
    def refused(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "Error response from daemon: login denied\n")

    def missing(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError("docker")

    with pytest.raises(DlcError, match="failed: Error response from daemon: login denied$"):
        dlc.docker_login(aws("ecr"), "us-east-1", refused)
    with pytest.raises(DlcError, match="docker is not installed"):
        dlc.docker_login(aws("ecr"), "us-east-1", missing)


def test_login_without_permission_is_one_line(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # moto does not enforce IAM, so the refusal AWS would send is stubbed.
    ecr = aws("ecr")
    with Stubber(ecr) as stub:
        stub.add_client_error("get_authorization_token", "AccessDeniedException", "not authorized to perform",
                              expected_params={"registryIds": ["763104351884"]})
        assert dlc.main(["login", "--region", "us-east-1"], client=ecr) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: AWS refused the registry login:") and err.count("\n") == 1


def test_cli_prints_uri_and_run_and_refuses_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert dlc.main(["uri", "pytorch", "--version", "2.7", "--device", "cpu", "--region", "ap-east-1"]) == 0
    assert capsys.readouterr().out == (
        "871362719292.dkr.ecr.ap-east-1.amazonaws.com/pytorch-training:2.7.1-cpu-py312-ubuntu22.04-ec2\n")
    assert dlc.main(["run", "pytorch", "--region", "us-east-1"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("docker run --rm --gpus all") and err.startswith("note: cu130 images do not run on V100")
    for argv in (["uri", "theano"], ["uri", "pytorch", "--region", "mars-1"], ["run", "mxnet", "--script", "/x.py"]):
        assert dlc.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
