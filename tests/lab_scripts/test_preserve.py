"""GPU homes kept as EBS snapshots under moto: complete before the instance may go, tagged, listed, deleted only
on request, named in the archive, and counted by the audit as kept on purpose."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab_scripts import preserve, prices
from lab_scripts.audit import audit_course
from lab_scripts.instance import InstanceError
from tests.lab_scripts.conftest import launchable_image

COURSE = "ml101"


def gpu_instance(aws: Any, student: str, course: str = COURSE) -> str:
    ec2 = aws("ec2")
    tags = [{"Key": "labkit:course", "Value": course}, {"Key": "labkit:student", "Value": student}]
    reply = ec2.run_instances(
        ImageId=launchable_image(ec2), MinCount=1, MaxCount=1, InstanceType="g4dn.xlarge",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 100, "DeleteOnTermination": True}}],
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}])
    return str(reply["Instances"][0]["InstanceId"])


def test_snapshot_of_a_running_instance_stops_it_first_and_is_complete(aws: Any) -> None:
    ec2 = aws("ec2")
    instance_id = gpu_instance(aws, "alice")
    record = preserve.snapshot_home(ec2, instance_id, course=COURSE, student="alice", delay=0)
    assert ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"][
        "Name"] == "stopped"
    assert (record.state, record.student, record.instance_id, record.size_gb) == ("completed", "alice",
                                                                                  instance_id, 100)
    snapshot, = ec2.describe_snapshots(SnapshotIds=[record.snapshot_id])["Snapshots"]
    tags = {tag["Key"]: tag["Value"] for tag in snapshot["Tags"]}
    assert tags["labkit:course"] == COURSE and tags["labkit:student"] == "alice"
    assert tags[preserve.TAG_PRESERVED_FROM] == instance_id
    assert record.usd_per_month == pytest.approx(100 * prices.SNAPSHOT_GB_MONTH)


def test_a_resumed_teardown_takes_no_second_snapshot(aws: Any) -> None:
    ec2 = aws("ec2")
    instance_id = gpu_instance(aws, "alice")
    first = preserve.snapshot_home(ec2, instance_id, course=COURSE, student="alice", delay=0)
    again = preserve.snapshot_home(ec2, instance_id, course=COURSE, student="alice", delay=0)
    assert again.snapshot_id == first.snapshot_id
    assert len(preserve.list_preserved(ec2, COURSE)) == 1


def test_a_class_is_preserved_at_once_and_listed_per_student(aws: Any) -> None:
    ec2 = aws("ec2")
    ids = {gpu_instance(aws, student): student for student in ("alice", "bob")}
    records = preserve.preserve_homes(ec2, ids, course=COURSE, delay=0)
    assert {r.student for r in records} == {"alice", "bob"} and {r.state for r in records} == {"completed"}
    assert [r.student for r in preserve.list_preserved(ec2, COURSE, "bob")] == ["bob"]


def test_a_terminated_instance_cannot_be_preserved(aws: Any) -> None:
    ec2 = aws("ec2")
    instance_id = gpu_instance(aws, "alice")
    ec2.terminate_instances(InstanceIds=[instance_id])
    with pytest.raises(preserve.PreserveError, match="terminated"):
        preserve.start_snapshot(ec2, instance_id, course=COURSE, student="alice")
    with pytest.raises(InstanceError, match="does not exist"):
        preserve.start_snapshot(ec2, "i-0123456789abcdef0", course=COURSE, student="alice")


def test_delete_removes_only_the_courses_kept_snapshots(aws: Any) -> None:
    ec2 = aws("ec2")
    alice = preserve.snapshot_home(ec2, gpu_instance(aws, "alice"), course=COURSE, student="alice", delay=0)
    bob = preserve.snapshot_home(ec2, gpu_instance(aws, "bob"), course=COURSE, student="bob", delay=0)
    other = preserve.snapshot_home(ec2, gpu_instance(aws, "carol", "ml202"), course="ml202", student="carol",
                                   delay=0)
    volume = ec2.describe_volumes()["Volumes"][0]["VolumeId"]
    unrelated = ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
        {"Key": "labkit:course", "Value": COURSE}]}])["SnapshotId"]  # course-tagged, not kept on purpose
    assert [r.snapshot_id for r in preserve.delete_preserved(ec2, COURSE, students=["bob"], dry_run=True)] == [
        bob.snapshot_id]
    with pytest.raises(preserve.PreserveError, match=f"{unrelated} is not a kept snapshot"):
        preserve.delete_preserved(ec2, COURSE, snapshot_ids=[unrelated])
    deleted = preserve.delete_preserved(ec2, COURSE)
    assert {r.snapshot_id for r in deleted} == {alice.snapshot_id, bob.snapshot_id}
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert {other.snapshot_id, unrelated} <= left and not {alice.snapshot_id, bob.snapshot_id} & left


def test_the_archive_names_each_snapshot_and_its_cost(aws: Any, tmp_path: Path) -> None:
    ec2 = aws("ec2")
    first = preserve.snapshot_home(ec2, gpu_instance(aws, "alice"), course=COURSE, student="alice", delay=0)
    preserve.write_manifest(tmp_path, [first])
    second = preserve.snapshot_home(ec2, gpu_instance(aws, "bob"), course=COURSE, student="bob", delay=0)
    path = preserve.write_manifest(tmp_path, [second, first])
    entries = json.loads(path.read_text())["snapshots"]
    assert [(e["student"], e["snapshot_id"]) for e in entries] == [("alice", first.snapshot_id),
                                                                    ("bob", second.snapshot_id)]
    assert entries[0]["usd_per_month_at_most"] == 5.0


def test_audit_counts_kept_snapshots_as_kept_on_purpose(aws: Any) -> None:
    ec2 = aws("ec2")
    instance_id = gpu_instance(aws, "alice")
    record = preserve.snapshot_home(ec2, instance_id, course=COURSE, student="alice", delay=0)
    ec2.terminate_instances(InstanceIds=[instance_id])
    report = audit_course(aws, COURSE, "/ml101/")
    kept, = report.kept
    assert (kept.kind, kept.name, kept.kept) == ("snapshot", record.snapshot_id, True)
    assert "kept on purpose" in kept.detail and "alice" in kept.detail
    assert kept.usd_per_hour == pytest.approx(100 * prices.SNAPSHOT_GB_MONTH / prices.HOURS_PER_MONTH)
    assert report.clean and report.billable == []
    assert report.kept_usd_per_hour == pytest.approx(kept.usd_per_hour)

