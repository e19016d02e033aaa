"""Keep a GPU instance's home directory when the instance goes: an EBS snapshot of its root volume.

Why a snapshot, not a `tar` of /home into the student's bucket over SSM Run Command: the end of a course finds
most instances stopped (the idle alarm), and a tar needs each one started again (a GPU hour each, minutes to boot,
an SSM agent that answers, a role that may write to the bucket) and still misses what students keep outside
/home (conda environments, /opt, Docker images). A snapshot needs only EC2 API calls, works on a stopped
instance, takes everything on the volume, and a new instance or volume can be made from it. Taken of a stopped
instance, it is consistent.

Cost: a snapshot bills for the blocks it stores, at most the volume's size, at SNAPSHOT_GB_MONTH (0.05 USD per
GB-month in us-east-1): at most 5 USD a month for the 100 GB default volume. It is kept until an instructor runs
the explicit delete (`delete_preserved`), and the audit lists it as kept on purpose with that cost.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from course.naming import TAG_COURSE, TAG_STUDENT
from lab_scripts import instance, prices

# The instance a snapshot preserves; with the course tag, what marks a snapshot as kept on purpose.
TAG_PRESERVED_FROM = "labkit:preserved-from"
MANIFEST = "preserved-snapshots.json"


class PreserveError(RuntimeError):
    """An instance whose volume cannot be preserved; the message names it and says why."""


@dataclass(frozen=True)
class SnapshotRecord:
    snapshot_id: str
    instance_id: str
    volume_id: str
    course: str
    student: str
    size_gb: int
    started: str  # ISO time
    state: str  # pending | completed | error

    @property
    def usd_per_month(self) -> float:
        """Upper bound: a snapshot stores at most its volume's size."""
        return self.size_gb * prices.SNAPSHOT_GB_MONTH


def _record(snapshot: dict[str, Any]) -> SnapshotRecord:
    tags = {tag["Key"]: tag["Value"] for tag in snapshot.get("Tags", [])}
    started = snapshot["StartTime"]
    return SnapshotRecord(snapshot["SnapshotId"], tags.get(TAG_PRESERVED_FROM, ""), snapshot.get("VolumeId", ""),
                          tags.get(TAG_COURSE, ""), tags.get(TAG_STUDENT, ""), int(snapshot.get("VolumeSize", 0)),
                          started.isoformat() if isinstance(started, dt.datetime) else str(started),
                          snapshot["State"])


def _describe_instance(ec2: Any, instance_id: str) -> dict[str, Any]:
    instance.status(ec2, instance_id)  # one-line InstanceError for an unknown id
    found: dict[str, Any] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return found


def _root_volume(info: dict[str, Any]) -> str:
    root = info.get("RootDeviceName")
    for mapping in info.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == root and "Ebs" in mapping:
            return str(mapping["Ebs"]["VolumeId"])
    raise PreserveError(f"instance {info['InstanceId']} has no EBS root volume to snapshot")


def start_snapshot(ec2: Any, instance_id: str, *, course: str, student: str, delay: int = 15) -> SnapshotRecord:
    """Stop the instance (a consistent file system; stopping keeps the volume) and snapshot its root volume.

    Run again for the same instance, it returns the snapshot already taken since the instance last started
    (a resumed teardown takes no second one).
    """
    info = _describe_instance(ec2, instance_id)
    if info["State"]["Name"] in {"shutting-down", "terminated"}:
        raise PreserveError(f"instance {instance_id} is {info['State']['Name']}: its volume is gone or going")
    if info["State"]["Name"] != "stopped":
        instance.stop(ec2, instance_id, delay=delay)
        info = _describe_instance(ec2, instance_id)
    volume = _root_volume(info)
    launched = info["LaunchTime"]
    for existing in list_preserved(ec2, course, raw=True):
        if (existing["VolumeId"] == volume and existing["State"] != "error"
                and existing["StartTime"] >= launched):
            return _record(existing)
    tags = [{"Key": TAG_COURSE, "Value": course}, {"Key": TAG_STUDENT, "Value": student},
            {"Key": TAG_PRESERVED_FROM, "Value": instance_id},
            {"Key": "Name", "Value": f"{course}-{student} GPU home, kept at course end"}]
    snapshot = ec2.create_snapshot(
        VolumeId=volume, Description=f"labkit {course}: {student}'s GPU instance {instance_id} root volume",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
    return _record({**snapshot, "Tags": tags})


def wait_completed(ec2: Any, records: list[SnapshotRecord], *, delay: int = 15,
                   max_attempts: int = 480) -> list[SnapshotRecord]:
    """Wait until every snapshot is complete (the first of a 100 GB volume can take an hour: 2 h by default);
    only then may the instance's stack be deleted."""
    pending = [record.snapshot_id for record in records if record.state != "completed"]
    if pending:
        ec2.get_waiter("snapshot_completed").wait(
            SnapshotIds=pending, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts})
    done = {s["SnapshotId"]: s for s in ec2.describe_snapshots(
        SnapshotIds=[record.snapshot_id for record in records])["Snapshots"]} if records else {}
    failed = [sid for sid, snap in done.items() if snap["State"] != "completed"]
    if failed:
        raise PreserveError(f"snapshot {failed[0]} is {done[failed[0]]['State']}; the instance must not be deleted")
    return [_record({**done[r.snapshot_id], "Tags": _tags(r)}) for r in records]


def _tags(record: SnapshotRecord) -> list[dict[str, str]]:
    return [{"Key": TAG_COURSE, "Value": record.course}, {"Key": TAG_STUDENT, "Value": record.student},
            {"Key": TAG_PRESERVED_FROM, "Value": record.instance_id}]


def snapshot_home(ec2: Any, instance_id: str, *, course: str, student: str, delay: int = 15,
                  max_attempts: int = 480) -> SnapshotRecord:
    """Stop, snapshot and wait for one instance; `preserve_homes` does a class at once."""
    record = start_snapshot(ec2, instance_id, course=course, student=student, delay=delay)
    return wait_completed(ec2, [record], delay=delay, max_attempts=max_attempts)[0]


def preserve_homes(ec2: Any, instances: dict[str, str], *, course: str, delay: int = 15,
                   max_attempts: int = 480) -> list[SnapshotRecord]:
    """instance id -> student: start every snapshot, then wait for all (they run in parallel in EBS)."""
    started = [start_snapshot(ec2, instance_id, course=course, student=student, delay=delay)
               for instance_id, student in sorted(instances.items())]
    return wait_completed(ec2, started, delay=delay, max_attempts=max_attempts)


def list_preserved(ec2: Any, course: str, student: str | None = None, *, raw: bool = False) -> list[Any]:
    """The course's kept snapshots (course-tagged and preserved-from tagged, this account's own), oldest first."""
    filters = [{"Name": f"tag:{TAG_COURSE}", "Values": [course]}, {"Name": "tag-key", "Values": [TAG_PRESERVED_FROM]}]
    if student is not None:
        filters.append({"Name": f"tag:{TAG_STUDENT}", "Values": [student]})
    found = [snap for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=filters)
             for snap in page["Snapshots"]]
    found.sort(key=lambda snap: snap["StartTime"])
    return found if raw else [_record(snap) for snap in found]


def delete_preserved(ec2: Any, course: str, *, students: list[str] | None = None,
                     snapshot_ids: list[str] | None = None, dry_run: bool = False) -> list[SnapshotRecord]:
    """Delete kept snapshots of `course` (all, or those of `students`, or the ids named); returns what was (or,
    with dry_run, would be) deleted. Never touches a snapshot without both labkit tags."""
    kept = list_preserved(ec2, course)
    chosen = [r for r in kept if (students is None or r.student in students)
              and (snapshot_ids is None or r.snapshot_id in snapshot_ids)]
    unknown = sorted(set(snapshot_ids or []) - {r.snapshot_id for r in kept})
    if unknown:
        raise PreserveError(f"snapshot {unknown[0]} is not a kept snapshot of {course}; nothing deleted")
    if not dry_run:
        for record in chosen:
            ec2.delete_snapshot(SnapshotId=record.snapshot_id)
    return chosen


def write_manifest(destination: Path, records: list[SnapshotRecord]) -> Path:
    """Name the snapshots in the course archive (destination/preserved-snapshots.json), merged by snapshot id,
    so the archive says where each student's GPU home is and what it costs to keep."""
    path = destination / MANIFEST
    entries: dict[str, dict[str, Any]] = {}
    if path.is_file():
        entries = {e["snapshot_id"]: e for e in json.loads(path.read_text(encoding="utf-8"))["snapshots"]}
    for record in records:
        entries[record.snapshot_id] = {**asdict(record), "usd_per_month_at_most": round(record.usd_per_month, 2)}
    destination.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"snapshots": sorted(entries.values(), key=lambda e: (e["student"], e["started"])),
                               "delete_with": "labctl preserved delete"}, indent=1), encoding="utf-8")
    tmp.replace(path)
    return path
