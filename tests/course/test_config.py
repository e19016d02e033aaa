"""Course-file validation: every bad value is one line naming the field; good files round-trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from course.config import ConfigError, load_config, parse_config, to_toml
from tests.conftest import ROOT, TODAY, course_raw, make_config

BAD: list[tuple[dict[str, Any], str]] = [
    ({"course": {"id": "ML101"}}, "course.id"),
    ({"course": {"id": "m"}}, "course.id"),
    ({"course": {"id": "1ml"}}, "course.id"),
    ({"course": {"id": "ml_101"}}, "course.id"),
    ({"course": {"id": "a-very-long-course-identifier"}}, "course.id"),
    ({"course": {"id": "ml101-"}}, "course.id"),
    ({"course": {"id": 101}}, "course.id"),
    ({"course": {"account": "12345"}}, "course.account"),
    ({"course": {"account": 123456789012}}, "course.account"),
    ({"course": {"region": "us-east-9"}}, "course.region"),
    ({"course": {"region": "US-EAST-1"}}, "course.region"),
    ({"course": {"expires": dt.date(2026, 1, 1)}}, "course.expires"),
    ({"course": {"expires": "next friday"}}, "course.expires"),
    ({"course": {"expires": "2027-02-30"}}, "course.expires"),
    ({"course": {"expires": dt.date(2207, 1, 1)}}, "course.expires"),
    ({"course": {"budget_usd": 0}}, "course.budget_usd"),
    ({"course": {"budget_usd": -5}}, "course.budget_usd"),
    ({"course": {"budget_usd": "100"}}, "course.budget_usd"),
    ({"course": {"budget_usd": True}}, "course.budget_usd"),
    ({"course": {"colour": "blue"}}, "course.colour"),
    ({"sagemaker": {"instance_type": "ml.t3.huge"}}, "sagemaker.instance_type"),
    ({"sagemaker": {"instance_type": "t3.medium"}}, "sagemaker.instance_type"),
    ({"sagemaker": {"volume_gb": 2}}, "sagemaker.volume_gb"),
    ({"sagemaker": {"volume_gb": 10.5}}, "sagemaker.volume_gb"),
    ({"sagemaker": {"idle_minutes": 0}}, "sagemaker.idle_minutes"),
    ({"sagemaker": {"idle_minutes": 5000}}, "sagemaker.idle_minutes"),
    ({"sagemaker": {"idle_minuts": 30}}, "sagemaker.idle_minuts"),
    ({"students": []}, "students"),
    ({"students": "alice"}, "students"),
    ({"students": ["alice", "alice"]}, "students[1]"),
    ({"students": ["alice", "Bob"]}, "students[1]"),
    ({"students": ["alice", "bob smith"]}, "students[1]"),
    ({"students": ["alice", ""]}, "students[1]"),
    ({"students": ["alice", "-bob"]}, "students[1]"),
    ({"students": ["alice", 7]}, "students[1]"),
    ({"students": ["a" * 25]}, "students[0]"),
    ({"students": [f"s{i}" for i in range(201)]}, "students"),
    ({"teachers": ["x"]}, "teachers"),
    ({"dlami": {"instance_type": "p3.16xlarge"}}, "dlami.instance_type"),
    ({"dlami": {"ami_type": "deep-learning-latest"}}, "dlami.ami_type"),
    ({"dlami": {"instance_type": "p3.2xlarge", "ami_type": "base-ubuntu-22.04"}}, "dlami.ami_type"),
    ({"dlami": {"instance_type": "g4dn.xlarge", "ami_type": "base-arm64-ubuntu-22.04"}}, "dlami.ami_type"),
    ({"dlami": {"instance_type": "g5g.xlarge", "ami_type": "base-ubuntu-22.04"}}, "dlami.ami_type"),
    ({"dlami": {"ami_id": "ami-xyz"}}, "dlami.ami_id"),
    ({"dlami": {"volume_gb": 30}}, "dlami.volume_gb"),
    ({"dlami": {"idle_minutes": 5}}, "dlami.idle_minutes"),
    ({"dlami": {"idle_cpu_percent": 90}}, "dlami.idle_cpu_percent"),
    ({"dlami": {"vpc_cidr": "10.0.0.0/8"}}, "dlami.vpc_cidr"),
    ({"dlami": {"vpc_cidr": "8.8.0.0/16"}}, "dlami.vpc_cidr"),
    ({"dlami": {"vpc_cidr": "10.42.0.0/33"}}, "dlami.vpc_cidr"),
    ({"dlami": {"availability_zone": "eu-west-1a"}}, "dlami.availability_zone"),
    ({"dlami": {"ssh_key_name": "teacher"}}, "dlami.ssh_cidr"),
    ({"dlami": {"ssh_key_name": "teacher", "ssh_cidr": "0.0.0.0/0"}}, "dlami.ssh_cidr"),
    ({"dlami": {"ssh_key_name": "teacher", "ssh_cidr": "::/0"}}, "dlami.ssh_cidr"),
    ({"dlami": {"ssh_key_name": "teacher", "ssh_cidr": "203.0.113.300/32"}}, "dlami.ssh_cidr"),
    ({"dlami": {"gpu": "v100"}}, "dlami.gpu"),
    ({"rekognition": {"features": []}}, "rekognition.features"),
    ({"rekognition": {"features": "labels"}}, "rekognition.features"),
    ({"rekognition": {"features": ["labels", "celebrities"]}}, "rekognition.features[1]"),
    ({"rekognition": {"features": ["text", "text"]}}, "rekognition.features[1]"),
    ({"rekognition": {"features": [["labels"]]}}, "rekognition.features[0]"),
    ({"rekognition": {"min_confidence": 101}}, "rekognition.min_confidence"),
    ({"rekognition": {"min_confidence": "70"}}, "rekognition.min_confidence"),
    ({"rekognition": {"max_labels": 0}}, "rekognition.max_labels"),
    ({"rekognition": {"max_labels": 2.5}}, "rekognition.max_labels"),
    ({"rekognition": {"max_lables": 5}}, "rekognition.max_lables"),
    ({"students": ["alice", "rekognition"]}, "students[1]"),
    ({"course": {"region": "ca-west-1"}}, "course.region"),
    ({"containers": {"class_repository": "yes"}}, "containers.class_repository"),
    ({"containers": {"class_repository": 1}}, "containers.class_repository"),
    ({"containers": {"keep_images": 0}}, "containers.keep_images"),
    ({"containers": {"keep_images": 5.5}}, "containers.keep_images"),
    ({"containers": {"keep_images": True}}, "containers.keep_images"),
    ({"containers": {"repository": "x"}}, "containers.repository"),
    ({"containers": "on"}, "containers"),
    ({"course": {"instructor_email": "teacher"}}, "course.instructor_email"),
    ({"course": {"instructor_email": "teacher@localhost"}}, "course.instructor_email"),
    ({"course": {"instructor_email": "a b@example.com"}}, "course.instructor_email"),
    ({"course": {"instructor_email": ["t@example.com"]}}, "course.instructor_email"),
    ({"guard": {"dry_run": "no"}}, "guard.dry_run"),
    ({"guard": {"dry_run": 0}}, "guard.dry_run"),
    ({"guard": {"every_minutes": 1}}, "guard.every_minutes"),
    ({"guard": {"max_usd_per_student_day": 0}}, "guard.max_usd_per_student_day"),
    ({"guard": {"max_usd_class_day": "lots"}}, "guard.max_usd_class_day"),
    ({"dlami": {"idle_gpu_percent": 0}}, "dlami.idle_gpu_percent"),
    ({"guard": {"idle_minutes": 5}}, "guard.idle_minutes"),
    ({"guard": {"idle_minutes": "60"}}, "guard.idle_minutes"),
    ({"guard": {"max_actions": 0}}, "guard.max_actions"),
    ({"guard": {"max_actions": 2000}}, "guard.max_actions"),
    ({"guard": {"after_hours": "20-7"}}, "guard.after_hours"),
    ({"guard": {"after_hours": "25:00-07:00"}}, "guard.after_hours"),
    ({"guard": {"after_hours": "08:00-08:00"}}, "guard.after_hours"),
    ({"guard": {"after_hours": 20}}, "guard.after_hours"),
    ({"guard": {"timezone": "Mars/Olympus"}}, "guard.timezone"),
    ({"guard": {"timezone": "../etc/passwd"}}, "guard.timezone"),
    ({"guard": {"timezone": "CET", "dryrun": True}}, "guard.dryrun"),
    ({"guard": "on"}, "guard"),
    ({"classroom": {"mode": "per-student"}}, "classroom.mode"),
    ({"classroom": {"mode": "account-per-student"}}, "classroom.organizational_unit"),
    ({"classroom": {"mode": "account-per-student", "organizational_unit": "ou-123"}}, "classroom.organizational_unit"),
    ({"classroom": {"mode": "account-per-student", "organizational_unit": "ou-ab12-cdef3456"}}, "classroom.roster"),
    ({"classroom": {"organizational_unit": "ou-ab12-cdef3456"}}, "classroom.organizational_unit"),
    ({"classroom": {"roster": 5}}, "classroom.roster"),
    ({"classroom": {"roster": "  "}}, "classroom.roster"),
    ({"classroom": {"max_concurrent_percentage": 0}}, "classroom.max_concurrent_percentage"),
    ({"classroom": {"failure_tolerance_percentage": 101}}, "classroom.failure_tolerance_percentage"),
    ({"classroom": {"failure_tolerance_percentage": 5.5}}, "classroom.failure_tolerance_percentage"),
    ({"classroom": {"roster_file": "class.csv"}}, "classroom.roster_file"),
    ({"classroom": "single-account"}, "classroom"),
    ({"classroom": {"roster": "class.csv"}}, "students"),  # a roster and a students list
]


@pytest.mark.parametrize(("override", "field"), BAD, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
def test_bad_value_is_one_line_naming_the_field(override: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(course_raw(**override), source="course.toml", today=TODAY)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"course.toml: {field}: ")


def test_derived_name_past_aws_limit_names_the_student() -> None:
    # Course id and student id are each valid, but the bucket name would pass S3's 63 characters.
    raw = course_raw(course={"id": "deep-learning-2026"}, students=["alice", "maximilian-alexander-k"],
                     )
    raw["course"]["region"] = "ap-southeast-3"
    with pytest.raises(ConfigError, match=r"students\[1\]: S3 bucket name .* is 6[4-9] characters; AWS allows 3-63"):
        parse_config(raw, source="c", today=TODAY)


def test_missing_sections_and_keys() -> None:
    raw = course_raw()
    del raw["course"]["account"]
    with pytest.raises(ConfigError, match="course.account: missing"):
        parse_config(raw, today=TODAY)
    with pytest.raises(ConfigError, match="course: missing"):
        parse_config({"students": ["a"]}, today=TODAY)


def test_expired_course_loads_for_teardown_only() -> None:
    raw = course_raw(course={"expires": dt.date(2026, 11, 1)})
    with pytest.raises(ConfigError, match="in the past"):
        parse_config(raw, today=TODAY)
    assert parse_config(raw, today=TODAY, allow_expired=True).expires == dt.date(2026, 11, 1)


def test_defaults_apply_when_sagemaker_section_is_absent() -> None:
    raw = course_raw()
    del raw["sagemaker"]
    settings = parse_config(raw, today=TODAY).sagemaker
    assert (settings.instance_type, settings.volume_gb, settings.idle_minutes) == ("ml.t3.medium", 10, 60)


def test_file_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[course\nid=1")
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_config(broken)
    assert "\n" not in str(caught.value)


def test_rekognition_defaults_and_values() -> None:
    assert make_config().rekognition.features == ("labels",)
    config = make_config(rekognition={"features": ["faces", "labels"], "min_confidence": 55, "max_labels": 3})
    assert (config.rekognition.features, config.rekognition.min_confidence, config.rekognition.max_labels) == (
        ("faces", "labels"), 55.0, 3)


def test_to_toml_round_trips(tmp_path: Path) -> None:
    config = make_config(students=["alice", "bob-2"], sagemaker={"instance_type": "ml.g4dn.xlarge"},
                         rekognition={"features": ["labels", "moderation"], "min_confidence": 80.5},
                         containers={"class_repository": False, "keep_images": 3},
                         course={"instructor_email": "teacher@example.edu"},
                         guard={"dry_run": False, "after_hours": "21:30-06:00", "timezone": "Europe/Berlin",
                                "max_actions": 7, "idle_minutes": 45, "every_minutes": 15,
                                "max_usd_per_student_day": 4.5, "max_usd_class_day": 60},
                         dlami={"idle_gpu_percent": 10})
    path = tmp_path / "course.toml"
    path.write_text(to_toml(config))
    assert load_config(path, today=TODAY) == config


def test_shipped_lab_toml_is_valid() -> None:
    config = load_config(ROOT / "lab.toml", allow_expired=True)
    assert config.account == "123456789012"


def test_p3_with_a_cuda_12_dlami_is_accepted_and_the_error_names_one() -> None:
    config = make_config(dlami={"instance_type": "p3.2xlarge", "ami_type": "pytorch-2.7-ubuntu-22.04"})
    assert config.dlami.instance_type == "p3.2xlarge"
    with pytest.raises(ConfigError, match="CUDA 13 no longer supports; use a CUDA 12 DLAMI .pytorch-2.7-ubuntu-22.04."):
        make_config(dlami={"instance_type": "p3.2xlarge"})


def test_ssh_needs_key_and_narrow_cidr() -> None:
    config = make_config(dlami={"ssh_key_name": "teacher", "ssh_cidr": "203.0.113.7/32"})
    assert (config.dlami.ssh_key_name, config.dlami.ssh_cidr) == ("teacher", "203.0.113.7/32")
def test_containers_default_to_pull_only_without_a_class_repository() -> None:
    raw = course_raw()
    del raw["containers"]
    settings = parse_config(raw, today=TODAY).containers
    assert (settings.class_repository, settings.keep_images) == (False, 10)


def test_region_without_dlc_registry_says_so() -> None:
    with pytest.raises(ConfigError, match="course.region: 'ca-west-1' has no AWS Deep Learning Containers registry"):
        parse_config(course_raw(course={"region": "ca-west-1"}), source="c", today=TODAY)


def test_guard_reports_only_unless_the_course_file_says_otherwise() -> None:
    """The first deploy of a course file without [guard] gets a guard that only reports (dry run)."""
    config = make_config()
    policy = config.guard.policy
    assert (policy.dry_run, policy.after_hours, policy.timezone, config.guard.every_minutes) == (True, "", "UTC", 5)
    assert (policy.max_usd_per_student_day, policy.max_usd_class_day, config.dlami.idle_gpu_percent) == (None, None, 5)
    assert config.instructor_email is None
    assert make_config(guard={"dry_run": False}).guard.policy.dry_run is False


def test_guard_error_names_the_value_not_the_python_field() -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(guard={"after_hours": "7pm-7am"})
    assert str(caught.value) == ("test.toml: guard.after_hours: '7pm-7am' must be HH:MM-HH:MM local time "
                                 "(e.g. 20:00-07:00)")


def test_to_toml_round_trips_a_roster_course(tmp_path: Path) -> None:
    """The demo writes its course file with to_toml: the roster (absolute) and the classroom settings survive."""
    roster = tmp_path / "class.csv"
    roster.write_text("name,email\nAda Lovelace,ada@example.edu\nAlan Turing,alan@example.edu\n")
    raw = course_raw(classroom={"roster": "class.csv", "mode": "account-per-student",
                                "organizational_unit": "ou-ab12-cdef3456", "max_concurrent_percentage": 50})
    del raw["students"]
    config = parse_config(raw, source="test.toml", today=TODAY, base_dir=tmp_path)
    elsewhere = tmp_path / "copy" / "course.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(to_toml(config))
    assert load_config(elsewhere, today=TODAY) == config
    assert config.students == ("ada-lovelace", "alan-turing") and config.roster[1].name == "Alan Turing"


def test_course_settings_match_the_functions_own_types() -> None:
    """The course model cannot import the Lambda code (a self-contained asset); the two must still agree."""
    import dataclasses

    from course.catalog import REKOGNITION_FEATURES
    from course.config import RekognitionSettings
    from lab_scripts.rekognition_fn.handler import FEATURES, Analysis

    assert REKOGNITION_FEATURES == tuple(FEATURES)
    assert dataclasses.asdict(RekognitionSettings()) == dataclasses.asdict(Analysis())


def test_guard_policy_matches_the_functions_policy() -> None:
    import dataclasses

    from course.config import GuardPolicy
    from lab_scripts.guard_fn.handler import Policy

    assert dataclasses.asdict(GuardPolicy()) == dataclasses.asdict(Policy())
    # Every policy the course file accepts, the function accepts too.
    accepted = make_config(guard={"after_hours": "20:00-07:00", "timezone": "Europe/Berlin", "dry_run": False,
                                  "max_usd_per_student_day": 5}).guard.policy
    assert Policy(**dataclasses.asdict(accepted)).window() is not None


SOLO_COURSE = {"id": "mylab", "account": "123456789012", "region": "us-east-1", "expires": dt.date(2027, 1, 31)}


def test_a_course_file_with_only_course_is_one_learner() -> None:
    config = parse_config({"course": SOLO_COURSE}, today=TODAY)
    assert config.classroom.mode == "solo" and config.classroom.solo and config.students == ("me",)
    assert config.budget_usd == 30.0 and config.roster == () and config.classroom.roster is None
    assert [(unit.construct_id, unit.stack_name, unit.student) for unit in config.stacks()] == [
        ("LabSageMaker", "mylab-LabSageMaker", "me"), ("LabDLAMI", "mylab-LabDLAMI", "me"),
        ("LabContainers", "mylab-LabContainers", None), ("LabRekognition", "mylab-LabRekognition", None),
        ("LabGuard", "mylab-LabGuard", None)]
    assert config.lab_stacks("LabDLAMI") == ["mylab-LabDLAMI"]
    assert parse_config({"course": SOLO_COURSE, "classroom": {"mode": "solo"}}, today=TODAY) == config


def test_shipped_solo_example_is_valid_and_round_trips(tmp_path: Path) -> None:
    config = load_config(ROOT / "examples" / "solo.toml", today=TODAY)
    assert config.classroom.solo
    path = tmp_path / "again.toml"
    path.write_text(to_toml(config))
    assert load_config(path, today=TODAY) == config


@pytest.mark.parametrize(("raw", "message"), [
    ({}, "c: course: missing [course] table"),
    ({"course": {**SOLO_COURSE, "id": "MyLab"}}, "c: course.id: 'MyLab' must be 3-20 of a-z 0-9 -"),
    ({"course": {**SOLO_COURSE, "expires": dt.date(2026, 1, 1)}}, "c: course.expires: 2026-01-01 is in the past"),
    ({"course": {**SOLO_COURSE, "account": "12"}}, "c: course.account: '12' must be a 12-digit"),
    ({"course": SOLO_COURSE, "classroom": {"mode": "solo", "students": ["a"]}}, "c: classroom.mode: 'solo' is one"),
    ({"course": SOLO_COURSE, "classroom": {"mode": "single-account"}}, "c: students: must be a non-empty list"),
    ({"course": SOLO_COURSE, "classroom": {"mode": "alone"}}, "c: classroom.mode: 'alone' must be one of 'solo'"),
])
def test_bad_solo_input_is_one_line_naming_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, source="c", today=TODAY)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_students_under_classroom_as_the_hint_says() -> None:
    raw = course_raw(classroom={"students": ["alice", "bob"]})
    del raw["students"]
    config = parse_config(raw, today=TODAY)
    assert config.students == ("alice", "bob") and config.classroom.mode == "single-account"
    assert config == make_config()
    with pytest.raises(ConfigError, match=r"^config: classroom.students: give the students once"):
        parse_config(course_raw(classroom={"students": ["alice"]}), today=TODAY)
    with pytest.raises(ConfigError, match=r"^config: classroom.students\[1\]: 'alice' is listed twice"):
        parse_config({**raw, "classroom": {"students": ["alice", "alice"]}}, today=TODAY)


def test_budget_is_a_default_not_a_requirement() -> None:
    raw = course_raw()
    del raw["course"]["budget_usd"]
    assert parse_config(raw, today=TODAY).budget_usd == 30.0


def test_gpu_instances_may_start_stopped() -> None:
    assert make_config().dlami.start == "running"
    assert make_config(dlami={"start": "stopped"}).dlami.start == "stopped"
    with pytest.raises(ConfigError, match=r"^test.toml: dlami.start: 'paused' must be 'running' or 'stopped'$"):
        make_config(dlami={"start": "paused"})
