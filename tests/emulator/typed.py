"""The CDK CLI as a learner or instructor types it, against an emulator: a fresh shell, the venv not active."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from course.config import LabConfig
from labkit.emulator import Endpoint
from labkit.target import Target
from lab_scripts.network_cleanup import clean_vpc

ROOT = Path(__file__).resolve().parents[2]


def cdk(endpoint: Endpoint, path: Path, *words: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`cdk <words>` as typed in a shell where the venv is not active (its bin dir is off PATH)."""
    venv_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "AWS_PROFILE")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update({k: v for k, v in endpoint.env().items() if k != "AWS_PROFILE"})
    env.update({"CDK_VALIDATION": "false", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"})
    # What a script adds to the learner's words: no approval prompt (there is no terminal).
    unattended = ["--require-approval", "never"] if words[0] == "deploy" else []
    # Parallel test workers each synthesize into their own folder (the CLI refuses two at once in one).
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    unattended += ["--output", str(ROOT / ".labkit" / f"typed-cdk.out-{worker}")] if worker else []
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "cdk"), *words, "-c", f"labkit:config={path}",
                           *unattended, "--no-notices"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert not check or done.returncode == 0, \
        f"cdk {' '.join(words)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def destroy_all(endpoint: Endpoint, target: Target, config: LabConfig, path: Path, *words: str) -> None:
    """`cdk destroy <words, or --all> --force`. The emulator's CloudFormation cannot delete the route tables and
    gateway of LabDLAMI's network (README, "The embedded emulator"; AWS's can), so here, as `labctl destroy` does,
    the VPC is cleared directly when that is the one failure, and the same command is run again."""
    words = words or ("--all",)
    first = cdk(endpoint, path, "destroy", *words, "--force", check=False)
    if first.returncode != 0:
        assert "has dependencies and cannot be deleted" in first.stdout + first.stderr, first.stderr[-3000:]
        ec2 = target.clients("ec2")
        for vpc in ec2.describe_vpcs(Filters=[{"Name": "tag:labkit:course", "Values": [config.course_id]}])["Vpcs"]:
            clean_vpc(ec2, vpc["VpcId"], echo=lambda line: None, wait_delay=1)
        cdk(endpoint, path, "destroy", *words, "--force")


def live_stacks(target: Target) -> dict[str, str]:
    """Name -> status of every stack that exists, but CDK's own."""
    cfn = target.clients("cloudformation")
    return {s["StackName"]: s["StackStatus"] for page in cfn.get_paginator("list_stacks").paginate()
            for s in page["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE" and s["StackName"] != "CDKToolkit"}
