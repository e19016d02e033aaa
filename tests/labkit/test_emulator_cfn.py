"""The emulator's CloudFormation fixes (labkit.emulator_cfn), each against the moto 5.2.5 behaviour it covers.

Every `test_moto_*` test shows the behaviour in unpatched moto: when one fails after a moto upgrade, the fix it
names can go.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from labkit.emulator_cfn import patch_cloudformation
from tests.lab_scripts.conftest import assigner, create_notebook

BOOTSTRAP = "/cdk-bootstrap/hnb659fds/version"


def cdk_template(*, queue: bool = False, export: str = "ml101-Topic") -> dict[str, Any]:
    """The shape of a CDK template: the defaulted SSM `BootstrapVersion` parameter, a topic and its export."""
    template: dict[str, Any] = {
        "Parameters": {"BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": BOOTSTRAP}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}, "Export": {"Name": export}}},
    }
    if queue:
        template["Resources"]["Queue"] = {"Type": "AWS::SQS::Queue"}
        template["Outputs"]["QueueUrl"] = {"Value": {"Ref": "Queue"}, "Export": {"Name": f"{export}Queue"}}
    return template


PREVIOUS = [{"ParameterKey": "BootstrapVersion", "UsePreviousValue": True}]  # what the CDK CLI sends on update


@pytest.fixture
def cfn(aws: Any) -> Any:
    aws("ssm").put_parameter(Name=BOOTSTRAP, Value="30", Type="String")
    return aws("cloudformation")


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> None:
    patch_cloudformation(monkeypatch.setattr)


def _status(cfn: Any, name: str) -> str:
    return str(cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])


def _exports(cfn: Any) -> set[str]:
    return {export["Name"] for export in cfn.list_exports()["Exports"]}


def test_moto_update_stack_fails_on_a_defaulted_previous_parameter(cfn: Any) -> None:
    cfn.create_stack(StackName="ml101-Lab", TemplateBody=json.dumps(cdk_template()))
    with pytest.raises(KeyError, match="BootstrapVersion"):
        cfn.update_stack(StackName="ml101-Lab", TemplateBody=json.dumps(cdk_template(queue=True)), Parameters=PREVIOUS)


def test_update_reuses_the_default_of_a_defaulted_previous_parameter(cfn: Any, aws: Any, patched: None) -> None:
    cfn.create_stack(StackName="ml101-Lab", TemplateBody=json.dumps(cdk_template()))
    cfn.update_stack(StackName="ml101-Lab", TemplateBody=json.dumps(cdk_template(queue=True)), Parameters=PREVIOUS)
    assert _status(cfn, "ml101-Lab") == "UPDATE_COMPLETE"
    assert len(aws("sqs").list_queues().get("QueueUrls", [])) == 1
    parameters = cfn.describe_stacks(StackName="ml101-Lab")["Stacks"][0]["Parameters"]
    assert parameters == [{"ParameterKey": "BootstrapVersion", "ParameterValue": "30"}]


def test_moto_update_stack_keeps_the_exports_of_the_created_template(cfn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit import emulator_cfn
    from moto.cloudformation.models import CloudFormationBackend

    monkeypatch.setattr(CloudFormationBackend, "_resolve_update_parameters", emulator_cfn.resolve_update_parameters)
    cfn.create_stack(StackName="ml101-Lab", TemplateBody=json.dumps(cdk_template()))
    cfn.update_stack(StackName="ml101-Lab", TemplateBody=json.dumps(cdk_template(queue=True)), Parameters=PREVIOUS)
    assert _exports(cfn) == {"ml101-Topic"}  # the added export is missing


def test_an_update_registers_added_exports_and_drops_removed_ones(cfn: Any, patched: None) -> None:
    cfn.create_stack(StackName="ml101-Lab", TemplateBody=json.dumps(cdk_template()))
    cfn.update_stack(StackName="ml101-Lab", TemplateBody=json.dumps(cdk_template(queue=True)), Parameters=PREVIOUS)
    assert _exports(cfn) == {"ml101-Topic", "ml101-TopicQueue"}
    cfn.update_stack(StackName="ml101-Lab", TemplateBody=json.dumps(cdk_template()), Parameters=PREVIOUS)
    assert _exports(cfn) == {"ml101-Topic"}


def _vpc_stack(cfn: Any, aws: Any) -> str:
    """A stack with a VPC and an export; a subnet made outside the stack blocks the VPC's delete."""
    template = {"Resources": {"Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
                              "Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"VpcId": {"Value": {"Ref": "Vpc"}, "Export": {"Name": "ml101-LabDLAMI:Vpc"}},
                            "TopicArn": {"Value": {"Ref": "Topic"}}}}
    cfn.create_stack(StackName="ml101-LabDLAMI", TemplateBody=json.dumps(template))
    vpc = cfn.describe_stack_resource(StackName="ml101-LabDLAMI", LogicalResourceId="Vpc")
    vpc_id = vpc["StackResourceDetail"]["PhysicalResourceId"]
    aws("ec2").create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")
    return str(vpc_id)


def test_moto_a_failed_delete_forgets_the_stack_and_keeps_its_exports(cfn: Any, aws: Any) -> None:
    _vpc_stack(cfn, aws)
    with pytest.raises(ClientError, match="DependencyViolation"):
        cfn.delete_stack(StackName="ml101-LabDLAMI")
    assert "ml101-LabDLAMI" not in {s["StackName"] for s in cfn.list_stacks()["StackSummaries"]}
    assert _exports(cfn) == {"ml101-LabDLAMI:Vpc"}  # and nothing can ever remove it


def test_a_failed_delete_is_delete_failed_and_a_retry_after_clean_up_removes_stack_and_exports(
    cfn: Any, aws: Any, patched: None
) -> None:
    vpc_id = _vpc_stack(cfn, aws)
    cfn.delete_stack(StackName="ml101-LabDLAMI")
    assert _status(cfn, "ml101-LabDLAMI") == "DELETE_FAILED"
    assert _exports(cfn) == {"ml101-LabDLAMI:Vpc"}  # as in AWS, a DELETE_FAILED stack keeps its exports
    # Describing the half-deleted stack creates nothing again (moto creates resources lazily).
    resources = cfn.list_stack_resources(StackName="ml101-LabDLAMI")["StackResourceSummaries"]
    assert [row["LogicalResourceId"] for row in resources] == ["Vpc"]
    assert {o["OutputKey"] for o in cfn.describe_stacks(StackName="ml101-LabDLAMI")["Stacks"][0]["Outputs"]} == {
        "VpcId", "TopicArn"}
    assert aws("sns").list_topics()["Topics"] == []
    ec2 = aws("ec2")
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc_id)  # the network clean-up deletes the VPC itself: the retry finds it gone
    cfn.delete_stack(StackName="ml101-LabDLAMI")
    assert _exports(cfn) == set()
    statuses = {s["StackName"]: s["StackStatus"] for s in cfn.list_stacks()["StackSummaries"]}
    assert statuses == {"ml101-LabDLAMI": "DELETE_COMPLETE"}
    cfn.delete_stack(StackName="ml101-LabDLAMI")  # deleting a deleted stack succeeds, as in AWS


def _change_set(cfn: Any, name: str, template: dict[str, Any], kind: str, **kwargs: Any) -> None:
    cfn.create_change_set(StackName=name, ChangeSetName="cdk-deploy-change-set", ChangeSetType=kind,
                          TemplateBody=json.dumps(template), **kwargs)
    cfn.execute_change_set(StackName=name, ChangeSetName="cdk-deploy-change-set")


def test_moto_change_sets_drop_outputs_and_cannot_delete_a_missing_one(cfn: Any) -> None:
    _change_set(cfn, "ml101-Lab", cdk_template(), "CREATE")
    assert "Outputs" not in cfn.describe_stacks(StackName="ml101-Lab")["Stacks"][0]
    with pytest.raises(UnboundLocalError):
        cfn.delete_change_set(StackName="ml101-Lab", ChangeSetName="not-there")


def test_change_sets_create_and_update_with_outputs_exports_and_imports(cfn: Any, aws: Any, patched: None) -> None:
    _change_set(cfn, "ml101-Lab", cdk_template(), "CREATE")
    assert _exports(cfn) == {"ml101-Topic"}
    importer = copy.deepcopy(cdk_template(export="ml101-Other"))
    importer["Resources"]["Queue"] = {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": {"Fn::Join": ["-", ["imports", {"Fn::Select": [5, {"Fn::Split": [":", {
            "Fn::ImportValue": "ml101-Topic"}]}]}]]}}}
    _change_set(cfn, "ml101-Other", importer, "CREATE")
    assert any("imports-ml101" in url for url in aws("sqs").list_queues()["QueueUrls"])
    # What the CLI does before every update: delete its old change set (it may not exist), wait until it is gone.
    cfn.delete_change_set(StackName="ml101-Lab", ChangeSetName="cdk-deploy-change-set")
    cfn.delete_change_set(StackName="ml101-Lab", ChangeSetName="cdk-deploy-change-set")
    with pytest.raises(ClientError) as gone:
        cfn.describe_change_set(StackName="ml101-Lab", ChangeSetName="cdk-deploy-change-set")
    assert gone.value.response["Error"]["Code"] == "ChangeSetNotFound"
    # The other stack's change set of the same name is its own.
    assert cfn.describe_change_set(StackName="ml101-Other", ChangeSetName="cdk-deploy-change-set")[
        "StackName"] == "ml101-Other"
    _change_set(cfn, "ml101-Lab", cdk_template(queue=True), "UPDATE", Parameters=PREVIOUS)
    stack = cfn.describe_stacks(StackName="ml101-Lab")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert {o["OutputKey"] for o in stack["Outputs"]} == {"TopicArn", "QueueUrl"}
    assert _exports(cfn) == {"ml101-Topic", "ml101-TopicQueue", "ml101-Other"}


VERSIONED_BUCKET = json.dumps({"Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {
    "BucketName": "ml101-versioned", "VersioningConfiguration": {"Status": "Enabled"}}}}})


def test_moto_ignores_a_template_buckets_versioning(aws: Any) -> None:
    aws("cloudformation").create_stack(StackName="ml101-Bucket", TemplateBody=VERSIONED_BUCKET)
    assert "Status" not in aws("s3").get_bucket_versioning(Bucket="ml101-versioned")


def test_the_emulator_versions_a_template_bucket(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.emulator_server import patch_moto

    patch_moto(assigner(monkeypatch))
    aws("cloudformation").create_stack(StackName="ml101-Bucket", TemplateBody=VERSIONED_BUCKET)
    assert aws("s3").get_bucket_versioning(Bucket="ml101-versioned")["Status"] == "Enabled"


def test_moto_has_no_presigned_notebook_url(aws: Any) -> None:
    # In-process moto raises this; its server answers HTTP 500 with an HTML page, which labctl printed.
    with pytest.raises(NotImplementedError, match="create_presigned_notebook_instance_url"):
        aws("sagemaker").create_presigned_notebook_instance_url(NotebookInstanceName=create_notebook(aws))


def test_the_emulator_gives_a_notebook_a_presigned_url_of_aws_form(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.emulator_server import patch_moto

    patch_moto(assigner(monkeypatch))
    sagemaker = aws("sagemaker")
    url = sagemaker.create_presigned_notebook_instance_url(NotebookInstanceName=create_notebook(aws))["AuthorizedUrl"]
    assert url.startswith("https://ml101-alice.notebook.us-east-1.sagemaker.aws?authToken=emulator-")
    assert url != sagemaker.create_presigned_notebook_instance_url(NotebookInstanceName="ml101-alice")["AuthorizedUrl"]
    with pytest.raises(ClientError, match="RecordNotFound"):
        sagemaker.create_presigned_notebook_instance_url(NotebookInstanceName="ml101-nobody")
