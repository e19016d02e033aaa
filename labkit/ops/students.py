"""One student's work across the term: `labctl reset` (a clean machine, the same files), `labctl restore` (an
archive back into a bucket), `labctl collect` (notebooks for grading), and `labctl repair` (a stack stuck in a
state no deploy goes on from)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path


from course.config import LabConfig
from course.layout import PER_STUDENT_LABS
from lab_scripts import buckets, collect as collect_files
from labkit.deployed import lab_physical_ids
from labkit.events import Info, Sink, ignore
from labkit.ops.errors import OperationError, RefusedError
from labkit.ops.stacks import deploy, ensure_bootstrapped, synthesize
from labkit.ops.teardown import DestroyResult, Drain, Journal, destroy, remove_stuck
from labkit.target import Target


@dataclass
class ResetResult:
    student: str
    destroyed: DestroyResult
    restored: list[buckets.RestoreResult] = field(default_factory=list)
    checked: int = 0  # files whose SHA-256 in the new bucket equals the archive's


def student_bucket(target: Target, config: LabConfig, student: str) -> str:
    """The student's bucket as deployed now (its stack's physical id, whatever name it was given)."""
    found = lab_physical_ids(target, config, "LabSageMaker", "AWS::S3::Bucket")
    if student not in found:
        raise RefusedError(f"{student} has no deployed bucket (`labctl provision` deploys LabSageMaker)")
    return found[student]


def restore(target: Target, config: LabConfig, student: str, manifest: Path,
            versions: str = "all") -> buckets.RestoreResult:
    """An archived bucket (its manifest.json, or the folder holding it) back into the student's bucket."""
    if manifest.is_dir():
        manifest = manifest / "manifest.json"
    if not manifest.is_file():
        raise RefusedError(f"{manifest} is not an archive manifest (labctl teardown/destroy/reset write them)")
    buckets.verify_archive(manifest)
    return buckets.restore_archive(target.clients("s3"), manifest, student_bucket(target, config, student),
                                   versions="all" if versions == "all" else "latest")


def check_restored(target: Target, bucket: str, manifest: Path) -> int:
    """How many archived files the bucket now holds byte-equal (by SHA-256); raises when one differs."""
    s3 = target.clients("s3")
    checked = 0
    for entry in json.loads(manifest.read_text())["objects"]:
        body = s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()
        if hashlib.sha256(body).hexdigest() != entry["sha256"]:
            raise OperationError(f"s3://{bucket}/{entry['key']}: restored bytes differ from the archive")
        checked += 1
    return checked


def reset(config: LabConfig, config_path: Path, target: Target, student: str, archive_dir: Path,
          emit: Sink = ignore) -> ResetResult:
    """Archive the student's work, rebuild their notebook and GPU stacks, put the files back (checksums equal)."""
    units = [unit for unit in config.stacks(PER_STUDENT_LABS) if unit.student == student]
    if not units:
        raise RefusedError(f"{student} has no stacks of their own in this course")
    destroyed = destroy(config, config_path, target, list(PER_STUDENT_LABS), archive_dir=archive_dir, emit=emit,
                        students=[student])
    ensure_bootstrapped(target, config, config_path, emit)
    synthesize(target, config_path, emit)
    deploy(config, config_path, target, list(PER_STUDENT_LABS), emit, synthesized=True, units=units,
           phase="rebuilding")
    result = ResetResult(student, destroyed)
    bucket = student_bucket(target, config, student)
    for archived in destroyed.archived:
        if archived.manifest is not None:
            result.restored.append(buckets.restore_archive(target.clients("s3"), archived.manifest, bucket))
            result.checked += check_restored(target, bucket, archived.manifest)
    emit(Info(f"{student}: {result.checked} files back in s3://{bucket}, SHA-256 equal to the archive"))
    return result


def collect(target: Target, config: LabConfig, students: list[str], out: Path,
            emit: Sink = ignore) -> list[collect_files.CollectResult]:
    """Each student's notebooks (and the files beside them) from the synced notebook/ prefix, for grading."""
    found = lab_physical_ids(target, config, "LabSageMaker", "AWS::S3::Bucket")
    s3 = target.clients("s3")
    results = []
    for student in students:
        if student not in found:
            emit(Info(f"{student}: no deployed bucket; nothing to collect"))
            continue
        results.append(collect_files.collect(s3, found[student], student, out))
    return results


def repair(config: LabConfig, target: Target, archive_dir: Path | None, emit: Sink = ignore) -> list[str]:
    """Delete the course's stacks stuck in REVIEW_IN_PROGRESS, ROLLBACK_COMPLETE, DELETE_FAILED ... after
    archiving any bucket they hold; returns the stacks removed."""
    return remove_stuck(Drain(target, archive_dir, emit, DestroyResult(), config, Journal(None)), config)
