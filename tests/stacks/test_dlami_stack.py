"""LabDLAMI template: one class VPC, one locked-down GPU instance per student, idle stop without Lambda."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.gpu_workstations import SESSION_MANAGER_ACTIONS
from lab_scripts.guard_fn.handler import AGENT_NAMESPACE, CPU_METRIC, GPU_METRIC, INPUT_METRIC, IdleRule
from course.catalog import DLAMIS
from course.config import LabConfig
from course.naming import TAG_COURSE, TAG_STUDENT
from tests.conftest import lab_template, make_config, new_app


@pytest.fixture(scope="module")
def template(templates: dict[str, Template]) -> Template:
    """The class stack and every student's stack together."""
    return lab_template(templates, "LabDLAMI")


def dlami_template(**dlami: Any) -> Template:
    from aws_cdk import Stack

    app = new_app(make_config(dlami=dlami))
    return lab_template({c.node.id: Template.from_stack(c) for c in app.node.children if isinstance(c, Stack)},
                        "LabDLAMI")


def test_students_stacks_import_the_class_network(templates: dict[str, Template], config: LabConfig) -> None:
    """The network and role exist once; each student's stack holds only the instance and its alarm."""
    templates["LabDLAMI"].resource_count_is("AWS::EC2::Instance", 0)
    for student in config.students:
        student_stack = templates[f"LabDLAMI-{student}"]
        kinds = {r["Type"] for r in student_stack.to_json()["Resources"].values()}
        assert kinds == {"AWS::EC2::Instance", "AWS::CloudWatch::Alarm"}
        assert "Fn::ImportValue" in json.dumps(student_stack.find_resources("AWS::EC2::Instance"))


def test_one_vpc_per_class_and_one_instance_per_student(template: Template, config: LabConfig) -> None:
    template.resource_count_is("AWS::EC2::VPC", 1)
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::Instance", len(config.students))
    template.resource_count_is("AWS::CloudWatch::Alarm", len(config.students))


def test_instances_require_imdsv2_and_encrypted_volumes(template: Template) -> None:
    template.all_resources_properties(
        "AWS::EC2::Instance",
        {
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "BlockDeviceMappings": [
                {"DeviceName": "/dev/sda1",
                 "Ebs": {"Encrypted": True, "VolumeType": "gp3", "VolumeSize": 100, "DeleteOnTermination": True}}
            ],
            "InstanceType": "g4dn.xlarge",
            "InstanceInitiatedShutdownBehavior": "stop",
            "PropagateTagsToVolumeOnCreation": True,
        },
    )


def test_ami_comes_from_the_public_ssm_parameter(template: Template, config: LabConfig) -> None:
    parameters = template.to_json()["Parameters"]
    ssm = [p for p in parameters.values() if p["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"]
    assert [p["Default"] for p in ssm] == [DLAMIS[config.dlami.ami_type].ssm_parameter]
    template.all_resources_properties("AWS::EC2::Instance", {"ImageId": {"Ref": "DlamiImageId"}})


def test_pinned_ami_replaces_the_lookup() -> None:
    pinned = dlami_template(ami_id="ami-0123456789abcdef0")
    pinned.all_resources_properties("AWS::EC2::Instance", {"ImageId": "ami-0123456789abcdef0"})
    assert "DlamiImageId" not in pinned.to_json().get("Parameters", {})


def test_no_inbound_by_default_and_never_from_the_world(template: Template) -> None:
    for group in template.find_resources("AWS::EC2::SecurityGroup").values():
        assert "SecurityGroupIngress" not in group["Properties"]
    template.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)
    ssh = dlami_template(ssh_key_name="teacher", ssh_cidr="203.0.113.0/24")
    ssh.has_resource_properties("AWS::EC2::SecurityGroup", {"SecurityGroupIngress": [
        {"CidrIp": "203.0.113.0/24", "FromPort": 22, "ToPort": 22, "IpProtocol": "tcp", "Description": Match.any_value()}
    ]})
    ssh.all_resources_properties("AWS::EC2::Instance", {"KeyName": "teacher"})
    assert "0.0.0.0/0" not in json.dumps(ssh.find_resources("AWS::EC2::SecurityGroup")).replace(
        '"CidrIp": "0.0.0.0/0", "Description": "Session Manager, package mirrors, datasets"', "")


def test_idle_alarm_stops_the_instance_when_cpu_gpu_and_terminals_are_idle(template: Template,
                                                                           config: LabConfig) -> None:
    minutes = config.dlami.idle_minutes
    template.all_resources_properties("AWS::CloudWatch::Alarm", {
        "ComparisonOperator": "LessThanThreshold",
        "Threshold": 1,
        "EvaluationPeriods": minutes,
        "DatapointsToAlarm": minutes,
        "TreatMissingData": "notBreaching",
        "AlarmActions": [f"arn:aws:automate:{config.region}:ec2:stop"],
    })
    rule = IdleRule(config.dlami.idle_cpu_percent, config.dlami.idle_gpu_percent)
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        queries = {q["Id"]: q for q in alarm["Properties"]["Metrics"]}
        expression = next(q for q in queries.values() if "Expression" in q)
        assert expression["Expression"] == rule.expression("cpu", "gpu", "tty") and expression["ReturnData"]
        # The three signals the agent publishes, per minute, for this instance only.
        assert {queries[i]["MetricStat"]["Metric"]["MetricName"] for i in ("cpu", "gpu", "tty")} == {
            CPU_METRIC, GPU_METRIC, INPUT_METRIC}
        for signal in ("cpu", "gpu", "tty"):
            stat = queries[signal]["MetricStat"]
            assert stat["Metric"]["Namespace"] == AGENT_NAMESPACE and stat["Period"] == 60
            assert stat["Stat"] == "Maximum" and not queries[signal]["ReturnData"]
            [dimension] = stat["Metric"]["Dimensions"]
            assert dimension["Name"] == "InstanceId" and "Ref" in dimension["Value"]


def test_gpu_threshold_is_configurable() -> None:
    custom = dlami_template(idle_gpu_percent=12, idle_minutes=15)
    custom.has_resource_properties("AWS::CloudWatch::Alarm", {"EvaluationPeriods": 15, "Metrics": Match.array_with([
        Match.object_like({"Expression": IdleRule(5, 12).expression()})])})


def test_the_user_data_configures_the_gpu_metrics_the_alarm_reads(template: Template) -> None:
    for instance in template.find_resources("AWS::EC2::Instance").values():
        script = instance["Properties"]["UserData"]["Fn::Base64"]
        agent = json.loads(script.split("<<'LABKIT_AGENT_EOF'\n")[1].split("\nLABKIT_AGENT_EOF")[0])
        assert agent["metrics"]["namespace"] == AGENT_NAMESPACE
        assert agent["metrics"]["aggregation_dimensions"] == [["InstanceId"]]
        assert agent["metrics"]["metrics_collected"]["nvidia_gpu"]["measurement"] == ["utilization_gpu"]
        assert "labkit_terminal_input" in script and "amazon-cloudwatch-agent-ctl -a fetch-config" in script


def test_instance_role_is_session_manager_dlc_pull_and_its_own_metrics_only(template: Template) -> None:
    """The GPU-aware alarm adds one permission: publishing into the labkit namespace. Stopping needs none of
    ours (the alarm's action is CloudWatch's own)."""
    for role in template.find_resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
    actions = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            actions.update(listed)
            if "ecr:BatchGetImage" in listed:
                assert all(":763104351884:repository/" in json.dumps(arn) for arn in statement["Resource"])
            if "cloudwatch:PutMetricData" in listed:
                assert listed == ["cloudwatch:PutMetricData"]
                assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": AGENT_NAMESPACE}}
    assert actions == set(SESSION_MANAGER_ACTIONS) | {
        "ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "cloudwatch:PutMetricData"}
    assert not any(a.startswith("ec2:") for a in actions)


def test_instances_carry_course_student_and_name_tags(template: Template, config: LabConfig) -> None:
    names = set()
    for resource in template.find_resources("AWS::EC2::Instance").values():
        tags = {t["Key"]: t["Value"] for t in resource["Properties"]["Tags"]}
        assert tags[TAG_COURSE] == config.course_id
        assert tags["Name"] == config.names.student(tags[TAG_STUDENT]).workstation
        names.add(tags[TAG_STUDENT])
    assert names == set(config.students)


def test_network_needs_no_custom_resource(template: Template) -> None:
    kinds = {r["Type"] for r in template.to_json()["Resources"].values()}
    assert not any(k.startswith("Custom::") or k == "AWS::Lambda::Function" for k in kinds)
