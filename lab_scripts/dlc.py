"""The course's Deep Learning Containers demo: which image to pull, how to log in to its registry, how to run it.

AWS publishes the framework images in an ECR registry of its own in each region, so students need the
registry account of their region, a pinned tag (a floating tag changes the framework under a running course),
and a registry login that never shows the registry password: it is a credential for 12 hours.
"""

from __future__ import annotations

import argparse
import base64
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from course.catalog import DEFAULT_REGISTRY, DLC_REGISTRIES

DEVICES = ("cpu", "gpu")
# CUDA 13 dropped Volta, the V100 GPU of p3 instances.
LAST_CUDA_FOR_VOLTA = 12
WORKDIR = "/workspace"


@dataclass(frozen=True)
class DlcImage:
    """One EC2 training image; its tag is `<version>-<device>-<python>[-<cuda>]-<os>-ec2` as AWS names them."""

    framework: str
    version: str
    device: str
    python: str
    os: str
    cuda: str = ""

    @property
    def repository(self) -> str:
        return f"{self.framework}-training"

    @property
    def tag(self) -> str:
        parts = [self.version, self.device, self.python, self.cuda, self.os, "ec2"]
        return "-".join(part for part in parts if part)

    def uri(self, region: str) -> str:
        return f"{registry_host(region)}/{self.repository}:{self.tag}"

    @property
    def note(self) -> str:
        if self.cuda and int(self.cuda.removeprefix("cu")[:2]) > LAST_CUDA_FOR_VOLTA:
            return f"{self.cuda} images do not run on V100 GPUs (p3); use g4dn/g5/g6 or an image with CUDA 12"
        return ""


def _pair(framework: str, version: str, python: str, os_: str, cuda: str) -> list[DlcImage]:
    return [DlcImage(framework, version, "cpu", python, os_), DlcImage(framework, version, "gpu", python, os_, cuda)]


# Pinned, real tags. MXNet is retired upstream (Apache, 2023): 1.9.0 is its last DLC, kept for the course's
# MXNet exercise; new material should use PyTorch.
IMAGES: tuple[DlcImage, ...] = (
    *_pair("pytorch", "2.9.0", "py312", "ubuntu22.04", "cu130"),
    *_pair("pytorch", "2.8.0", "py312", "ubuntu22.04", "cu129"),
    *_pair("pytorch", "2.7.1", "py312", "ubuntu22.04", "cu128"),
    *_pair("pytorch", "2.6.0", "py312", "ubuntu22.04", "cu126"),
    *_pair("tensorflow", "2.16.2", "py310", "ubuntu20.04", "cu123"),
    *_pair("mxnet", "1.9.0", "py38", "ubuntu20.04", "cu112"),
)
FRAMEWORKS = tuple(sorted({image.framework for image in IMAGES}))
# The repositories the course pulls from; the IAM pull policy names exactly these.
REPOSITORIES = tuple(sorted({image.repository for image in IMAGES}))


class DlcError(ValueError):
    """Bad input or a failed login; str() is one line that says what to use instead."""


def registry_account(region: str) -> str:
    try:
        return DLC_REGISTRIES[region]
    except KeyError:
        raise DlcError(
            f"region {region!r} has no Deep Learning Containers registry (regions: {', '.join(sorted(DLC_REGISTRIES))})"
        ) from None


def registry_host(region: str) -> str:
    return f"{registry_account(region)}.dkr.ecr.{region}.amazonaws.com"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def find_image(framework: str, version: str | None = None, device: str = "gpu") -> DlcImage:
    """The pinned image for a framework; `version` may be '2.8' or '2.8.0', None means the newest."""
    framework = framework.lower()
    if framework not in FRAMEWORKS:
        raise DlcError(f"unknown framework {framework!r} (known: {', '.join(FRAMEWORKS)})")
    if device not in DEVICES:
        raise DlcError(f"device {device!r} must be one of {', '.join(DEVICES)}")
    candidates = sorted(
        (image for image in IMAGES if image.framework == framework and image.device == device),
        key=lambda image: _version_key(image.version),
        reverse=True,
    )
    if version is None:
        return candidates[0]
    for image in candidates:
        if image.version == version or image.version.startswith(f"{version}."):
            return image
    known = ", ".join(sorted({image.version for image in candidates}, key=_version_key))
    raise DlcError(f"no {framework} {version} image in the course table (known: {known})")


def login_command(ecr: Any, region: str) -> str:
    """The `docker login` command for the region's DLC registry, after checking these credentials may log in.

    The command fetches the password itself and pipes it to docker, so it never reaches a terminal, shell
    history or log.
    """
    account = registry_account(region)
    ecr.get_authorization_token(registryIds=[account])
    return (
        f"aws ecr get-login-password --region {region} | "
        f"docker login --username AWS --password-stdin {registry_host(region)}"
    )


Runner = Callable[..., subprocess.CompletedProcess[str]]


def docker_login(ecr: Any, region: str, run: Runner = subprocess.run) -> str:
    """Log docker in to the DLC registry; the password goes to docker on stdin only, never argv or output."""
    account = registry_account(region)
    data = ecr.get_authorization_token(registryIds=[account])["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    if user != "AWS" or not password:
        raise DlcError("ECR returned an authorization token in an unexpected format")
    host = registry_host(region)
    try:
        result = run(
            ["docker", "login", "--username", "AWS", "--password-stdin", host],
            input=password, text=True, capture_output=True, check=False,
        )
    except FileNotFoundError:
        raise DlcError("docker is not installed here; print the login command without --exec instead") from None
    if result.returncode != 0:
        last = (result.stderr or result.stdout or "").strip().splitlines()
        raise DlcError(f"docker login to {host} failed: {last[-1] if last else f'exit {result.returncode}'}")
    return host


def run_command(image: DlcImage, region: str, script: str = "train.py", workdir: str = ".") -> str:
    """The `docker run` line that trains `script` from `workdir` in the image (GPU images get every GPU)."""
    path = PurePosixPath(script)
    if path.is_absolute() or ".." in path.parts or path.suffix != ".py":
        raise DlcError(f"script {script!r} must be a .py file inside the working folder (it is mounted at {WORKDIR})")
    gpus = ["--gpus", "all"] if image.device == "gpu" else []
    # PyTorch/MXNet data loaders pass batches through shared memory; docker's 64 MB default stalls them.
    args = [
        "docker", "run", "--rm", *gpus, "--shm-size", "2g",
        "-v", f"{os.path.abspath(workdir)}:{WORKDIR}", "-w", WORKDIR,
        image.uri(region), "python", str(path),
    ]
    return shlex.join(args)


def _region(value: str | None) -> str:
    import boto3  # here, not at the top: every CDK synth imports this module for DLC_REGISTRIES (0.1 s saved)

    region = value or boto3.session.Session().region_name
    if not region:
        raise DlcError("no region: pass --region or set AWS_REGION")
    return region


def main(argv: list[str] | None = None, client: Any = None, run: Runner = subprocess.run) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_scripts.dlc", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    for name, help_ in (("uri", "print the image URI"), ("run", "print the docker run command")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("framework", help=f"one of {', '.join(FRAMEWORKS)}")
        p.add_argument("--version", help="framework version, e.g. 2.8 (default: newest in the table)")
        p.add_argument("--device", default="gpu", help="cpu or gpu (default: gpu)")
        p.add_argument("--region", help="AWS region (default: AWS_REGION)")
        if name == "run":
            p.add_argument("--script", default="train.py", help="training script in the working folder")
    p = sub.add_parser("login", help="print the docker login command for the region's DLC registry")
    p.add_argument("--region", help="AWS region (default: AWS_REGION)")
    p.add_argument("--exec", action="store_true", help="run docker login now (password on stdin only)")
    args = parser.parse_args(argv)
    try:
        region = _region(args.region)
        if args.action == "login":
            import boto3

            client = client or boto3.client("ecr", region_name=region)
            print(f"logged in to {docker_login(client, region, run)}" if args.exec else login_command(client, region))
            return 0
        image = find_image(args.framework, args.version, args.device)
        print(image.uri(region) if args.action == "uri" else run_command(image, region, args.script))
        if image.note:
            print(f"note: {image.note}", file=sys.stderr)
        return 0
    except DlcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"error: AWS refused the registry login: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
