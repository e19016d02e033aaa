"""A changed stack deploys again with the real CDK CLI in the embedded emulator, by change set (the CLI's default,
what a learner types) and directly (what labctl uses), and its exports follow; a clean-up fallback delete leaves
no export behind (labkit.emulator_cfn)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.cdk import cdk_executable
from labkit.emulator import Emulator, Endpoint

pytestmark = pytest.mark.emulator

APP = """
import aws_cdk as cdk
from aws_cdk import aws_sns as sns, aws_sqs as sqs
app = cdk.App()
stack = cdk.Stack(app, "Lab", env=cdk.Environment(account="123456789012", region="us-east-1"))
topic = sns.Topic(stack, "Topic")
cdk.CfnOutput(stack, "TopicArn", value=topic.topic_arn, export_name="LabTopic")
if app.node.try_get_context("version") == "2":
    queue = sqs.Queue(stack, "Queue")
    cdk.CfnOutput(stack, "QueueUrl", value=queue.queue_url, export_name="LabQueue")
app.synth()
"""


@pytest.fixture(scope="module")
def own_emulator() -> Iterator[Endpoint]:
    # Its own emulator: the class round trip expects a region with nothing but the CDK bootstrap stack.
    with Emulator("us-east-1") as running:
        yield running


def _cdk(app: Path, endpoint: Endpoint, *args: str) -> str:
    env = {**os.environ, **endpoint.env(), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
           "CDK_VALIDATION": "false"}
    env.pop("AWS_PROFILE", None)
    done = subprocess.run([str(cdk_executable()), *args, "--app", f"{sys.executable} {app}", "--no-notices",
                           "--no-color"], env=env, capture_output=True, text=True, cwd=app.parent, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout + done.stderr


def test_cdk_deploy_of_a_changed_stack_updates_it_by_change_set_and_directly(own_emulator: Endpoint,
                                                                              tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    _cdk(app, own_emulator, "bootstrap", "aws://123456789012/us-east-1")
    cfn, sqs = own_emulator.session().client("cloudformation"), own_emulator.session().client("sqs")
    deploy = ["deploy", "Lab", "--require-approval", "never"]

    _cdk(app, own_emulator, *deploy)
    _cdk(app, own_emulator, *deploy, "-c", "version=2")  # moto: KeyError 'BootstrapVersion' without the fix
    stack = cfn.describe_stacks(StackName="Lab")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert {o["OutputKey"] for o in stack["Outputs"]} == {"TopicArn", "QueueUrl"}
    assert {e["Name"] for e in cfn.list_exports()["Exports"]} >= {"LabTopic", "LabQueue"}
    assert len(sqs.list_queues().get("QueueUrls", [])) == 1

    _cdk(app, own_emulator, *deploy, "--method=direct")  # back to version 1: the queue and its export go
    assert "LabQueue" not in {e["Name"] for e in cfn.list_exports()["Exports"]}
    assert sqs.list_queues().get("QueueUrls", []) == []
    _cdk(app, own_emulator, "destroy", "Lab", "--force")
    assert {e["Name"] for e in cfn.list_exports()["Exports"]} == {"CdkBootstrap-hnb659fds-FileAssetKeyArn"}
