"""The teardown sweep over about 1,000 course resources in moto (in-process): `audit_course`, then the
notebook and GPU-instance stop sweep, timed and with every AWS API call counted.

The resources are what a large class leaves behind when a teardown went wrong: per-student buckets (half of
them holding work), notebooks, lifecycle configs, roles, users with keys, instances, log streams, queues,
repositories, function log groups; all named and tagged like labkit's own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from bench.stats import Figure, Section, timed
from lab_scripts import instance, notebook
from lab_scripts.audit import LAMBDA_LOG_GROUP_PREFIX, NOTEBOOK_LOG_GROUP, audit_course
from course.naming import TAG_COURSE

COURSE = "ml101"
IAM_PATH = f"/labkit/{COURSE}/"
REGION = "us-east-1"

# How many of each kind; the total is the "1,000 resources" of the benchmark (see `expected_leftovers`).
MIX = {
    "bucket": 200,
    "notebook": 150,
    "lifecycle config": 100,
    "role": 150,
    "user": 100,
    "access key": 50,
    "instance": 100,
    "log stream": 50,
    "queue": 50,
    "log group": 30,
    "repository": 20,
}


@dataclass
class CountingClients:
    """A client factory like labkit's, which counts every API call its clients make (botocore before-call)."""

    calls: Counter[str] = field(default_factory=Counter)

    def __call__(self, service: str) -> Any:
        client = boto3.client(service, region_name=REGION)
        client.meta.events.register("before-call", self._count)
        return client

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}:{model.name}"] += 1


def expected_leftovers() -> int:
    return sum(MIX.values())


def _tags() -> list[dict[str, str]]:
    return [{"Key": TAG_COURSE, "Value": COURSE}]


def populate(aws: Any) -> dict[str, list[str]]:
    """Create the course's leftovers; returns the notebook names and instance ids the stop sweep acts on, and
    the lifecycle configs, which moto cannot list: `labctl destroy` passes those to the audit as seen at deploy."""
    s3, iam, sm = aws("s3"), aws("iam"), aws("sagemaker")
    for index in range(MIX["bucket"]):
        bucket = f"{COURSE}-s{index:03d}-123456789012-{REGION}"
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": _tags()})
        if index % 2:
            s3.put_object(Bucket=bucket, Key="work/model.py", Body=b"import torch\n")
    role_arn = ""
    for index in range(MIX["role"]):
        role_arn = iam.create_role(RoleName=f"{COURSE}-s{index:03d}-notebook", Path=IAM_PATH,
                                   AssumeRolePolicyDocument="{}", Tags=_tags())["Role"]["Arn"]
    for index in range(MIX["user"]):
        user = f"{COURSE}-s{index:03d}-dlc"
        iam.create_user(UserName=user, Path=IAM_PATH, Tags=_tags())
        if index < MIX["access key"]:
            iam.create_access_key(UserName=user)
    lifecycle_configs = []
    for index in range(MIX["lifecycle config"]):
        lifecycle_configs.append(f"{COURSE}-s{index:03d}-autostop")
        sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=lifecycle_configs[-1])
    notebooks = []
    for index in range(MIX["notebook"]):
        name = f"{COURSE}-s{index:03d}"
        sm.create_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=role_arn,
                                    Tags=_tags())
        notebooks.append(name)
    ec2 = aws("ec2")
    image = ec2.register_image(Name="labkit bench image")["ImageId"]  # listing moto's 1,300 AMIs is slow
    reservation = ec2.run_instances(
        ImageId=image, InstanceType="g4dn.xlarge", MinCount=MIX["instance"], MaxCount=MIX["instance"],
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tags()}],
    )
    logs = aws("logs")
    logs.create_log_group(logGroupName=NOTEBOOK_LOG_GROUP)
    for index in range(MIX["log stream"]):
        logs.create_log_stream(logGroupName=NOTEBOOK_LOG_GROUP, logStreamName=f"{COURSE}-s{index:03d}/jupyter.log")
    for index in range(MIX["log group"]):
        group = f"{LAMBDA_LOG_GROUP_PREFIX}{COURSE}-fn{index:02d}"
        logs.create_log_group(logGroupName=group, tags={TAG_COURSE: COURSE})
        logs.create_log_stream(logGroupName=group, logStreamName="2026/11/25/[$LATEST]0")
    sqs = aws("sqs")
    for index in range(MIX["queue"]):
        sqs.create_queue(QueueName=f"{COURSE}-q{index:02d}", tags={TAG_COURSE: COURSE})
    ecr = aws("ecr")
    for index in range(MIX["repository"]):
        ecr.create_repository(repositoryName=f"{COURSE}-r{index:02d}", tags=_tags())
    return {"notebooks": notebooks, "instances": [i["InstanceId"] for i in reservation["Instances"]],
            "lifecycle configs": lifecycle_configs}


@dataclass(frozen=True)
class SweepRun:
    audit_s: float
    audit_calls: Counter[str]
    found: int
    stop_s: float
    stop_calls: Counter[str]


def sweep_once() -> SweepRun:
    """One fresh moto account: populate (not timed), audit, stop every notebook and instance."""
    with mock_aws():
        targets = populate(lambda service: boto3.client(service, region_name=REGION))
        audit_clients = CountingClients()
        known = [("lifecycle config", name) for name in targets["lifecycle configs"]]
        audit_s, report = timed(lambda: audit_course(audit_clients, COURSE, IAM_PATH, known=known))
        stop_clients = CountingClients()

        def stop_all() -> None:
            sm, ec2 = stop_clients("sagemaker"), stop_clients("ec2")
            for name in targets["notebooks"]:
                notebook.stop(sm, name, delay=1)
            for instance_id in targets["instances"]:
                instance.stop(ec2, instance_id, delay=1)

        stop_s, _ = timed(stop_all)
    return SweepRun(audit_s, audit_clients.calls, len(report.leftovers), stop_s, stop_clients.calls)


def bench_sweep(runs: int) -> list[Section]:
    results = [sweep_once() for _ in range(runs)]
    section = Section(f"Teardown sweep over {expected_leftovers()} course resources (moto in-process)")
    section.add(Figure("audit_course", "s", tuple(r.audit_s for r in results)).within(10, "≤ 10 s"))
    section.add(Figure("audit_course API calls", "calls", tuple(float(sum(r.audit_calls.values())) for r in results)))
    section.add(Figure(f"stop sweep ({MIX['notebook']} notebooks + {MIX['instance']} instances)", "s",
                       tuple(r.stop_s for r in results)))
    section.add(Figure("stop sweep API calls", "calls", tuple(float(sum(r.stop_calls.values())) for r in results)))
    last = results[-1]
    section.facts.update(
        resources=expected_leftovers(),
        leftovers_found=last.found,
        audit_calls_by_operation=dict(last.audit_calls.most_common()),
        stop_calls_by_operation=dict(last.stop_calls.most_common()),
    )
    return [section]
