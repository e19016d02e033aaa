"""STAND-IN, not labkit code: synthesis in account-per-student (StackSets) mode, which labkit does not have yet.

It stands for the intended design so its cost can be measured before it is built: the per-student labs
(LabSageMaker, LabDLAMI) are synthesized ONCE, for one placeholder student, whatever the class size; a class
stack then deploys that template to every student's account through one `AWS::CloudFormation::StackSet` per lab.
Students are data there: one list of account ids. With `--overrides` each student also gets a parameter
override (their id), which takes one StackInstances group per student: the measured cost of that variant is
why the design should let each account know its student (e.g. from the account's tags) instead.
The class-wide labs (LabContainers, LabRekognition) stay ordinary stacks. Run as a process of its own:

    CDK_OUTDIR=/tmp/out python -m bench.stackset_standin --students 300 [--overrides]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
from pathlib import Path

from aws_cdk import App, Stack
from aws_cdk import aws_cloudformation as cfn
from aws_cdk import aws_s3_assets as s3_assets

from bench.course import students
from labkit import ROOT
from labkit.config import load_config
from stacks import build_app

PER_STUDENT_LABS = ("LabSageMaker", "LabDLAMI")
PLACEHOLDER_STUDENT = "student"


def fake_account(index: int) -> str:
    """Students' accounts would come from AWS Organizations; any 12 digits do for synthesis."""
    return f"{200000000000 + index:012d}"


def stack_instances(class_size: int, region: str, overrides: bool) -> list[cfn.CfnStackSet.StackInstancesProperty]:
    """Where the template goes: every student's account, in one group unless each needs its own parameters."""
    accounts = [fake_account(index) for index in range(class_size)]
    if not overrides:
        return [cfn.CfnStackSet.StackInstancesProperty(
            deployment_targets=cfn.CfnStackSet.DeploymentTargetsProperty(accounts=accounts), regions=[region])]
    return [
        cfn.CfnStackSet.StackInstancesProperty(
            deployment_targets=cfn.CfnStackSet.DeploymentTargetsProperty(accounts=[account]),
            regions=[region],
            parameter_overrides=[cfn.CfnStackSet.ParameterProperty(parameter_key="StudentId", parameter_value=name)],
        )
        for account, name in zip(accounts, students(class_size))
    ]


def synth(class_size: int, outdir: Path, *, overrides: bool = False) -> None:
    base = load_config(ROOT / "lab.toml", allow_expired=True)
    one_student = dataclasses.replace(base, students=(PLACEHOLDER_STUDENT,))
    # Phase 1, independent of class size: the whole app for one placeholder student.
    student_app = build_app(App(outdir=str(outdir / "per-student")), one_student)
    per_student = student_app.synth()

    # Phase 2: the class stack; the only part that grows with the class, and it grows by data only.
    class_app = App(outdir=str(outdir))
    stack = Stack(class_app, "ClassStackSets", stack_name=f"{base.course_id}-stacksets")
    instances = stack_instances(class_size, base.region, overrides)
    for lab in PER_STUDENT_LABS:
        template = s3_assets.Asset(stack, f"{lab}Template", path=per_student.get_stack_by_name(
            one_student.names.stack(lab)).template_full_path)
        cfn.CfnStackSet(
            stack,
            lab,
            stack_set_name=one_student.names.stack(lab),
            permission_model="SERVICE_MANAGED",
            auto_deployment=cfn.CfnStackSet.AutoDeploymentProperty(enabled=False),
            capabilities=["CAPABILITY_NAMED_IAM"],
            template_url=template.http_url,
            stack_instances_group=instances,
        )
    class_app.synth()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, required=True)
    parser.add_argument("--overrides", action="store_true", help="one parameter override (the student id) each")
    args = parser.parse_args()
    gc.disable()  # as app.py does; see there
    synth(args.students, Path(os.environ.get("CDK_OUTDIR") or "cdk.out.standin"), overrides=args.overrides)
    gc.freeze()


if __name__ == "__main__":
    main()
