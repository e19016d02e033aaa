"""The one typed configuration of a course, read from a TOML file and validated before anything is built.

Every error is one line that names the file and the field, because instructors fix config in an editor,
not in a debugger.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from course.catalog import DLAMIS, DLC_REGISTRIES, INSTANCES, REKOGNITION_FEATURES as FEATURES, incompatibility
from course.layout import LABS, PER_STUDENT_LABS, StackUnit, lab_stack_names, stack_units
from course.naming import (CLASSROOM, COURSE_ID, EMAIL, PLACEHOLDER_STUDENT, SOLO_STUDENT, STUDENT_ID, AwsNameError,
                           CourseNames, check)
from course.roster import RosterError, Student, read_roster

# guard.after_hours: "HH:MM-HH:MM", local time in guard.timezone, may wrap midnight.
AFTER_HOURS = re.compile(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d")

# The stacks LabGuard may delete when the course ends: every lab but itself (it reports, and teardown removes it).
GUARDED_LABS = [lab for lab in LABS if lab != "LabGuard"]
# Never the guard's in any mode: deleting the stack set would delete the students' buckets without the archive
# that `labctl teardown` makes first.
UNGUARDED = frozenset({"LabGuard", CLASSROOM})

REGIONS = frozenset(
    "us-east-1 us-east-2 us-west-1 us-west-2 ca-central-1 ca-west-1 sa-east-1 mx-central-1 "
    "eu-west-1 eu-west-2 eu-west-3 eu-central-1 eu-central-2 eu-north-1 eu-south-1 eu-south-2 "
    "ap-south-1 ap-south-2 ap-east-1 ap-east-2 ap-northeast-1 ap-northeast-2 ap-northeast-3 "
    "ap-southeast-1 ap-southeast-2 ap-southeast-3 ap-southeast-4 ap-southeast-5 ap-southeast-7 "
    "me-south-1 me-central-1 il-central-1 af-south-1".split()
)


def _sizes(family: str, sizes: str) -> list[str]:
    return [f"ml.{family}.{size}" for size in sizes.split()]


NOTEBOOK_INSTANCE_TYPES = frozenset(
    _sizes("t3", "medium large xlarge 2xlarge")
    + _sizes("t2", "medium large xlarge 2xlarge")
    + _sizes("m5", "xlarge 2xlarge 4xlarge 12xlarge 24xlarge")
    + _sizes("m6i", "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge")
    + _sizes("c5", "xlarge 2xlarge 4xlarge 9xlarge 18xlarge")
    + _sizes("c6i", "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge")
    + _sizes("r5", "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge")
    + _sizes("g4dn", "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge")
    + _sizes("g5", "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge")
    + _sizes("p3", "2xlarge 8xlarge 16xlarge")
)


# Single-account mode: each student has their own stacks, so no stack limit binds; the class stacks grow by one
# IAM user per student (a test derives the stack limit from the templates). Past 200 students one account's
# quotas (notebook instances, GPU vCPUs, API rate limits of a teardown) are the limit long before that:
# account-per-student mode ([classroom] mode) is the way.
MAX_STUDENTS = 200
# Account-per-student mode: students are accounts in an OU, not stacks in the template; AWS Organizations' own
# account quota (10 by default, raised on request) is the real bound, this one only catches a wrong file.
MAX_ACCOUNT_STUDENTS = 2000
SINGLE_ACCOUNT = "single-account"
ACCOUNT_PER_STUDENT = "account-per-student"
# One learner in their own account: a course file with no students (README, "On your own").
SOLO = "solo"
MODES = (SOLO, SINGLE_ACCOUNT, ACCOUNT_PER_STUDENT)
# The budget alert's default, per month: a learner's notebook and a few GPU hours stay under it, a forgotten GPU
# instance (about 13 USD a day) crosses it within days. A default, not a requirement: set course.budget_usd.
DEFAULT_BUDGET_USD = 30.0
OU_ID = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$")

# A course longer than a year is almost always a typo in the expiry year, and would leave resources running.
MAX_COURSE_DAYS = 366


class ConfigError(ValueError):
    """Invalid configuration; str() is a single line naming the file and field."""


@dataclass(frozen=True)
class SageMakerSettings:
    instance_type: str = "ml.t3.medium"
    volume_gb: int = 10
    idle_minutes: int = 60


@dataclass(frozen=True)
class DlamiSettings:
    instance_type: str = "g4dn.xlarge"
    ami_type: str = "base-ubuntu-22.04"
    # Pins the image for the course; otherwise the newest DLAMI is resolved from SSM at each deploy.
    ami_id: str | None = None
    volume_gb: int = 100
    idle_minutes: int = 60
    idle_cpu_percent: int = 5
    # GPU-aware idle: the GPU counts as busy at or above this utilisation (the alarm and the guard).
    idle_gpu_percent: int = 5
    vpc_cidr: str = "10.42.0.0/16"
    # GPU capacity differs per zone (`labctl doctor` shows where the type is offered); default: the first.
    availability_zone: str | None = None
    ssh_key_name: str | None = None
    ssh_cidr: str | None = None
    # "stopped": provision stops each new GPU instance once created (a class is often provisioned days before its
    # first lab; a running one bills by the hour); the handout says how to start it.
    start: str = "running"


@dataclass(frozen=True)
class ContainersSettings:
    # Off by default: a class repository stores images (billed per GB-month) that only some courses need.
    class_repository: bool = False
    keep_images: int = 10


@dataclass(frozen=True)
class RekognitionSettings:
    """Which Rekognition calls run on each image, and their thresholds: the [rekognition] table. The stack hands
    them to the function as its Analysis (a test keeps the two types' fields and defaults equal)."""

    features: tuple[str, ...] = ("labels",)
    min_confidence: float = 70.0
    max_labels: int = 10


@dataclass(frozen=True)
class GuardPolicy:
    """What the guard may do: the [guard] table, checked here. The stack hands it to the function as the
    function's own Policy (a test keeps the two types' fields and defaults equal)."""

    # On unless a course file says otherwise: a guard that has never run for a course only reports.
    dry_run: bool = True
    idle_minutes: int = 120
    after_hours: str = ""  # "HH:MM-HH:MM" local time, may wrap midnight; "" = no after-hours stop
    timezone: str = "UTC"
    max_actions: int = 50
    # Spend caps in USD per local day (None = off).
    max_usd_per_student_day: float | None = None
    max_usd_class_day: float | None = None

    def zone(self) -> dt.tzinfo:
        return dt.timezone.utc if self.timezone == "UTC" else ZoneInfo(self.timezone)


@dataclass(frozen=True)
class GuardSettings:
    # Every 5 minutes: the spend cap acts within one period (README "Teardown guard": about 0.1 USD a month).
    every_minutes: int = 5
    policy: GuardPolicy = field(default_factory=GuardPolicy)


@dataclass(frozen=True)
class ClassroomSettings:
    """Where the students come from and how the class is laid out over accounts."""

    mode: str = SINGLE_ACCOUNT
    # The roster file as resolved (absolute); None when the course file lists `students` itself.
    roster: Path | None = None
    # Account-per-student mode: the OU holding the students' accounts, which the class stack set targets.
    organizational_unit: str | None = None
    # StackSet rollout: how many accounts at once, and how many may fail before the rollout stops (percent).
    max_concurrent_percentage: int = 25
    failure_tolerance_percentage: int = 10

    @property
    def per_account(self) -> bool:
        return self.mode == ACCOUNT_PER_STUDENT

    @property
    def solo(self) -> bool:
        return self.mode == SOLO


@dataclass(frozen=True)
class LabConfig:
    course_id: str
    account: str
    region: str
    expires: dt.date
    budget_usd: float
    students: tuple[str, ...]
    sagemaker: SageMakerSettings = field(default_factory=SageMakerSettings)
    dlami: DlamiSettings = field(default_factory=DlamiSettings)
    rekognition: RekognitionSettings = field(default_factory=RekognitionSettings)
    containers: ContainersSettings = field(default_factory=ContainersSettings)
    guard: GuardSettings = field(default_factory=GuardSettings)
    # Budget alerts and guard reports; without it they go to the SNS topic only (subscribe by hand).
    instructor_email: str | None = None
    classroom: ClassroomSettings = field(default_factory=ClassroomSettings)
    # The roster's rows (name, e-mail, own account) when students come from a roster file.
    roster: tuple[Student, ...] = ()

    def student_row(self, student: str) -> Student | None:
        return next((row for row in self.roster if row.id == student), None)

    @property
    def names(self) -> CourseNames:
        return CourseNames(self.course_id, self.account, self.region)

    def stacks(self, labs: Iterable[str] = LABS) -> list[StackUnit]:
        """The course's stacks for `labs`: class stacks once, the per-student labs once per student."""
        return stack_units(self.names, self.students, labs, per_account=self.classroom.per_account,
                           solo=self.classroom.solo)

    def lab_stacks(self, lab: str) -> list[str]:
        """Stack names of one lab, students' first."""
        return lab_stack_names(self.names, self.students, lab, per_account=self.classroom.per_account,
                               solo=self.classroom.solo)

    @property
    def guarded_labs(self) -> list[str]:
        """The labs whose stacks LabGuard may delete: those this mode has stacks for (GUARDED_LABS in a single
        account), never UNGUARDED."""
        return [lab for lab in dict.fromkeys(unit.lab for unit in self.stacks()) if lab not in UNGUARDED]


_SCHEMA: dict[str, set[str]] = {
    "course": {"id", "account", "region", "expires", "budget_usd", "instructor_email"},
    "sagemaker": {"instance_type", "volume_gb", "idle_minutes"},
    "dlami": {f.name for f in fields(DlamiSettings)},
    "rekognition": {"features", "min_confidence", "max_labels"},
    "containers": {"class_repository", "keep_images"},
    "guard": {"dry_run", "every_minutes", "idle_minutes", "after_hours", "timezone", "max_actions",
              "max_usd_per_student_day", "max_usd_class_day"},
    "classroom": {"roster", "students", "mode", "organizational_unit", "max_concurrent_percentage",
                  "failure_tolerance_percentage"},
    "": {"course", "sagemaker", "dlami", "rekognition", "containers", "guard", "classroom", "students"},
}


def load_config(path: str | Path, *, today: dt.date | None = None, allow_expired: bool = False) -> LabConfig:
    """Read and validate a course file. `allow_expired` lets teardown commands run after the course ended."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(raw, source=str(path), today=today, allow_expired=allow_expired, base_dir=path.parent)


def parse_config(
    raw: dict[str, Any], *, source: str = "config", today: dt.date | None = None, allow_expired: bool = False,
    base_dir: Path = Path("."),
) -> LabConfig:
    """Validate a course file's contents; `base_dir` is where a relative roster path is read from."""
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {message}")

    for section, allowed in _SCHEMA.items():
        table = raw if section == "" else raw.get(section, {})
        if not isinstance(table, dict):
            raise fail(section, "must be a table")
        for key in table:
            if key not in allowed:
                where = f"{section}.{key}" if section else key
                raise fail(where, f"unknown setting (known: {', '.join(sorted(allowed))})")

    course = raw.get("course")
    if not isinstance(course, dict):
        raise fail("course", "missing [course] table")

    def required(table: dict[str, Any], section: str, key: str, kind: type) -> Any:
        if key not in table:
            raise fail(f"{section}.{key}", "missing")
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise fail(f"{section}.{key}", f"must be a {kind.__name__}, got {value!r}")
        return value

    course_id = required(course, "course", "id", str)
    if not COURSE_ID.match(course_id):
        raise fail("course.id", f"'{course_id}' must be 3-20 of a-z 0-9 -, start with a letter, end alphanumeric")
    account = required(course, "course", "account", str)
    if not re.fullmatch(r"\d{12}", account):
        raise fail("course.account", f"'{account}' must be a 12-digit AWS account id")
    region = required(course, "course", "region", str)
    if region not in REGIONS:
        raise fail("course.region", f"'{region}' is not an AWS commercial region")
    if region not in DLC_REGISTRIES:
        raise fail("course.region", f"'{region}' has no AWS Deep Learning Containers registry, which LabContainers "
                   f"pulls from (regions with one: {', '.join(sorted(DLC_REGISTRIES))})")

    expires = course.get("expires")
    if isinstance(expires, str):
        try:
            expires = dt.date.fromisoformat(expires)
        except ValueError:
            raise fail("course.expires", f"'{expires}' is not a date (use YYYY-MM-DD)") from None
    if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
        raise fail("course.expires", "missing or not a date (use YYYY-MM-DD)")
    today = today or dt.date.today()
    if expires < today and not allow_expired:
        raise fail(
            "course.expires",
            f"{expires} is in the past; nothing is deployed after a course ends (teardown still works)",
        )
    if (expires - today).days > MAX_COURSE_DAYS:
        raise fail("course.expires", f"{expires} is more than {MAX_COURSE_DAYS} days away; check the year")

    budget = required({"budget_usd": DEFAULT_BUDGET_USD, **course}, "course", "budget_usd", float)
    if not 0 < budget <= 100_000:
        raise fail("course.budget_usd", f"{budget} must be between 0 and 100000")
    email = course.get("instructor_email")
    if email is not None and not (isinstance(email, str) and len(email) <= 254 and EMAIL.match(email)):
        raise fail("course.instructor_email", f"{email!r} is not an e-mail address")

    sm_raw = raw.get("sagemaker", {})
    defaults = SageMakerSettings()
    instance_type = sm_raw.get("instance_type", defaults.instance_type)
    if instance_type not in NOTEBOOK_INSTANCE_TYPES:
        family = str(instance_type).rsplit(".", 1)[0]
        hints = sorted(t for t in NOTEBOOK_INSTANCE_TYPES if t.startswith(family + ".")) or ["ml.t3.medium"]
        raise fail(
            "sagemaker.instance_type",
            f"'{instance_type}' is not a SageMaker notebook instance type (e.g. {', '.join(hints[:4])})",
        )
    volume_gb = _whole(sm_raw, "volume_gb", defaults.volume_gb, 5, 16384, "GB", fail, "sagemaker")
    idle = _whole(sm_raw, "idle_minutes", defaults.idle_minutes, 5, 24 * 60, "minutes", fail, "sagemaker")

    rekognition = _rekognition(raw.get("rekognition", {}), fail)
    ct_raw = raw.get("containers", {})
    class_repository = ct_raw.get("class_repository", ContainersSettings.class_repository)
    if not isinstance(class_repository, bool):
        raise fail("containers.class_repository", f"{class_repository!r} must be true or false")
    keep_images = _whole(ct_raw, "keep_images", ContainersSettings.keep_images, 1, 1000, "images", fail, "containers")

    classroom_raw = raw.get("classroom", {})
    # `students` is read at the top level and, as the README and lab.toml hint at it, under [classroom].
    listed = {key: table["students"] for key, table in (("students", raw), ("classroom.students", classroom_raw))
              if "students" in table}
    if len(listed) > 1:
        raise fail("classroom.students", "give the students once: here or at the top level, not both")
    classroom = _parse_classroom(classroom_raw, fail, base_dir,
                                 has_students=bool(listed) or "roster" in classroom_raw)
    limit = MAX_ACCOUNT_STUDENTS if classroom.per_account else MAX_STUDENTS
    roster: tuple[Student, ...] = ()
    students_key = next(iter(listed), "students")
    if classroom.solo:
        students_raw: Any = [SOLO_STUDENT]
    elif classroom.roster is not None:
        if listed:
            raise fail(students_key, "give the students either here or in classroom.roster, not both")
        try:
            roster = read_roster(classroom.roster, names=CourseNames(course_id, account, region), max_students=limit)
        except RosterError as exc:
            raise ConfigError(str(exc)) from None
        students_raw = [row.id for row in roster]
    else:
        students_raw = listed.get(students_key)
    if not isinstance(students_raw, list) or not students_raw:
        raise fail(students_key, "must be a non-empty list of student ids (or set classroom.roster)")
    if classroom.per_account and raw.get("dlami", {}).get("availability_zone") is not None:
        raise fail("dlami.availability_zone", "zone names map to different zones in each account: leave it unset "
                   "in account-per-student mode (each account uses its first zone)")
    if classroom.per_account and not roster:
        raise fail("classroom.roster", "missing: account-per-student mode creates each student's account with the "
                   "e-mail address from the roster")
    if len(students_raw) > limit:
        raise fail("students", f"{len(students_raw)} students are more than one account holds in single-account "
                               f"mode (at most {MAX_STUDENTS}); use account-per-student mode ([classroom] mode)"
                   if not classroom.per_account else f"{len(students_raw)} students: at most {limit}")
    seen: set[str] = set()
    for index, student in enumerate(students_raw):
        key = f"{students_key}[{index}]"
        if not isinstance(student, str) or not STUDENT_ID.match(student):
            raise fail(key, f"{student!r} must be 1-24 of a-z 0-9 -, starting and ending alphanumeric")
        if student in seen:
            raise fail(key, f"'{student}' is listed twice")
        seen.add(student)

    config = LabConfig(
        course_id=course_id,
        account=account,
        region=region,
        expires=expires,
        budget_usd=budget,
        students=tuple(students_raw),
        sagemaker=SageMakerSettings(instance_type=instance_type, volume_gb=volume_gb, idle_minutes=idle),
        dlami=_parse_dlami(raw.get("dlami", {}), region, fail),
        rekognition=rekognition,
        containers=ContainersSettings(class_repository=class_repository, keep_images=keep_images),
        guard=_parse_guard(raw.get("guard", {}), fail),
        instructor_email=email,
        classroom=classroom,
        roster=roster,
    )
    names = config.names
    try:
        names.validate_course(LABS)
        if classroom.solo:
            # The learner's bucket carries its stack's generation (README, "On your own"); check the longest.
            check("S3 bucket", names.student(SOLO_STUDENT).longest_kept_bucket)
        if classroom.per_account:
            # The names every student's account holds; the template builds them from the account it lands in,
            # and the stack set deploys to this region, so the course's account stands for any (same length).
            names.student(PLACEHOLDER_STUDENT).validate()
    except AwsNameError as exc:
        raise fail("course.id", str(exc)) from None
    for index, student in enumerate(config.students):
        try:
            names.student(student).validate()
            for lab in PER_STUDENT_LABS:
                check("CloudFormation stack", names.stack(lab, student))
        except AwsNameError as exc:
            raise fail(f"students[{index}]", f"{exc} (shorten the course or student id)") from None
        if names.student(student).bucket == names.rekognition.bucket:
            raise fail(f"students[{index}]", f"'{student}' is reserved: LabRekognition's upload bucket uses it")
    return config


def _parse_classroom(table: dict[str, Any], fail: Callable[[str, str], ConfigError],
                     base_dir: Path, *, has_students: bool) -> ClassroomSettings:
    """The [classroom] table. Without a mode, a course file that names no students is one learner's (solo)."""
    defaults = ClassroomSettings()
    mode = table.get("mode", defaults.mode if has_students else SOLO)
    if mode not in MODES:
        raise fail("classroom.mode", f"{mode!r} must be one of {', '.join(repr(m) for m in MODES)}")
    if mode == SOLO and has_students:
        raise fail("classroom.mode", "'solo' is one learner in their own account: remove students and roster, "
                   f"or use '{SINGLE_ACCOUNT}' for a class")
    roster = table.get("roster")
    if roster is not None and not (isinstance(roster, str) and roster.strip()):
        raise fail("classroom.roster", f"{roster!r} must be the path of a CSV file")
    ou = table.get("organizational_unit")
    if mode == ACCOUNT_PER_STUDENT and ou is None:
        raise fail("classroom.organizational_unit", "missing: account-per-student mode deploys to the students' "
                   "accounts in this OU (e.g. ou-ab12-cdef3456)")
    if ou is not None and not (isinstance(ou, str) and OU_ID.match(ou)):
        raise fail("classroom.organizational_unit", f"{ou!r} is not an OU id (ou-, 4-32 characters, -, 8-32)")
    if ou is not None and mode != ACCOUNT_PER_STUDENT:
        raise fail("classroom.organizational_unit", f"only used in {ACCOUNT_PER_STUDENT} mode (mode is {mode!r})")
    return ClassroomSettings(
        mode=mode,
        roster=(base_dir / roster).resolve() if roster is not None else None,
        organizational_unit=ou,
        max_concurrent_percentage=_whole(table, "max_concurrent_percentage", defaults.max_concurrent_percentage,
                                         1, 100, "percent", fail, "classroom"),
        failure_tolerance_percentage=_whole(table, "failure_tolerance_percentage",
                                            defaults.failure_tolerance_percentage, 0, 100, "percent", fail,
                                            "classroom"),
    )


def _whole(table: dict[str, Any], key: str, default: int, low: int, high: int, unit: str,
           fail: Callable[[str, str], ConfigError], section: str) -> int:
    """The one check for whole-number settings: an int (not a bool, which TOML users write by mistake) in range."""
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise fail(f"{section}.{key}", f"{value!r} must be a whole number of {unit} between {low} and {high}")
    return value


def _parse_dlami(table: dict[str, Any], region: str, fail: Callable[[str, str], ConfigError]) -> DlamiSettings:
    defaults = DlamiSettings()
    instance_type = table.get("instance_type", defaults.instance_type)
    if instance_type not in INSTANCES:
        raise fail("dlami.instance_type", f"{instance_type!r} is not a supported GPU type ({', '.join(INSTANCES)})")
    ami_type = table.get("ami_type", defaults.ami_type)
    if ami_type not in DLAMIS:
        raise fail("dlami.ami_type", f"{ami_type!r} is not a known DLAMI ({', '.join(DLAMIS)})")
    problem = incompatibility(instance_type, ami_type)
    if problem:
        raise fail("dlami.ami_type", problem)
    ami_id = table.get("ami_id")
    if ami_id is not None and not (isinstance(ami_id, str) and re.fullmatch(r"ami-[0-9a-f]{8,17}", ami_id)):
        raise fail("dlami.ami_id", f"{ami_id!r} is not an AMI id (ami- and 8 or 17 hex digits)")
    vpc_cidr = table.get("vpc_cidr", defaults.vpc_cidr)
    try:
        network = ipaddress.IPv4Network(vpc_cidr)
    except (ValueError, TypeError):
        raise fail("dlami.vpc_cidr", f"{vpc_cidr!r} is not an IPv4 network (e.g. 10.42.0.0/16)") from None
    if not network.is_private or not 16 <= network.prefixlen <= 24:
        raise fail("dlami.vpc_cidr", f"{vpc_cidr} must be a private network between /16 and /24")
    zone = table.get("availability_zone")
    if zone is not None and not (isinstance(zone, str) and re.fullmatch(rf"{re.escape(region)}[a-z]", zone)):
        raise fail("dlami.availability_zone", f"{zone!r} is not a zone of {region} (e.g. {region}a)")
    key_name, ssh_cidr = table.get("ssh_key_name"), table.get("ssh_cidr")
    if (key_name is None) != (ssh_cidr is None):
        raise fail("dlami.ssh_cidr", "SSH needs both ssh_key_name and ssh_cidr (Session Manager needs neither)")
    if key_name is not None and (not isinstance(key_name, str) or not re.fullmatch(r"[\x20-\x7e]{1,255}", key_name)):
        raise fail("dlami.ssh_key_name", f"{key_name!r} is not an EC2 key pair name")
    start = table.get("start", defaults.start)
    if start not in ("running", "stopped"):
        raise fail("dlami.start", f"{start!r} must be 'running' or 'stopped'")
    if ssh_cidr is not None:
        try:
            source = ipaddress.ip_network(ssh_cidr)
        except (ValueError, TypeError):
            raise fail("dlami.ssh_cidr", f"{ssh_cidr!r} is not a CIDR (e.g. 203.0.113.7/32)") from None
        if source.prefixlen == 0:
            raise fail("dlami.ssh_cidr", f"{ssh_cidr} opens SSH to the whole internet; give your own network")
    return DlamiSettings(
        start=start,
        instance_type=instance_type,
        ami_type=ami_type,
        ami_id=ami_id,
        volume_gb=_whole(table, "volume_gb", defaults.volume_gb, 75, 16384, "GB", fail, "dlami"),
        idle_minutes=_whole(table, "idle_minutes", defaults.idle_minutes, 10, 1440, "minutes", fail, "dlami"),
        idle_cpu_percent=_whole(table, "idle_cpu_percent", defaults.idle_cpu_percent, 1, 50, "percent", fail,
                                "dlami"),
        idle_gpu_percent=_whole(table, "idle_gpu_percent", defaults.idle_gpu_percent, 1, 50, "percent", fail,
                                "dlami"),
        vpc_cidr=str(network),
        availability_zone=zone,
        ssh_key_name=key_name,
        ssh_cidr=str(source) if ssh_cidr is not None else None,
    )
def _parse_guard(table: dict[str, Any], fail: Callable[[str, str], ConfigError]) -> GuardSettings:
    """The [guard] table. Without `dry_run` the guard only reports: acting is an explicit choice per course."""
    defaults = GuardPolicy()
    dry_run = table.get("dry_run", defaults.dry_run)
    if not isinstance(dry_run, bool):
        raise fail("guard.dry_run", f"{dry_run!r} must be true or false")
    texts = {}
    for key, default in (("after_hours", defaults.after_hours), ("timezone", defaults.timezone)):
        value = table.get(key, default)
        if not isinstance(value, str):
            raise fail(f"guard.{key}", f"{value!r} must be a string")
        texts[key] = value
    window = texts["after_hours"]
    if window and not AFTER_HOURS.fullmatch(window):
        raise fail("guard.after_hours", f"{window!r} must be HH:MM-HH:MM local time (e.g. 20:00-07:00)")
    if window and window[:5] == window[6:]:
        raise fail("guard.after_hours", f"{window!r} is an empty window")
    if texts["timezone"] != "UTC":
        try:
            ZoneInfo(texts["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise fail("guard.timezone", f"{texts['timezone']!r} is not an IANA time zone (e.g. Europe/Berlin)") \
                from None
    return GuardSettings(
        every_minutes=_whole(table, "every_minutes", GuardSettings.every_minutes, 5, 1440, "minutes", fail, "guard"),
        policy=GuardPolicy(
            dry_run=dry_run,
            idle_minutes=_whole(table, "idle_minutes", defaults.idle_minutes, 15, 1440, "minutes", fail, "guard"),
            after_hours=texts["after_hours"],
            timezone=texts["timezone"],
            max_actions=_whole(table, "max_actions", defaults.max_actions, 1, 1000, "actions", fail, "guard"),
            **_parse_caps(table, fail),
        ),
    )


def _parse_caps(table: dict[str, Any], fail: Callable[[str, str], ConfigError]) -> dict[str, float]:
    """guard.max_usd_per_student_day and guard.max_usd_class_day: optional USD per local day, off when absent."""
    caps = {}
    for key in ("max_usd_per_student_day", "max_usd_class_day"):
        if key not in table:
            continue
        value = table[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 100_000:
            raise fail(f"guard.{key}", f"{value!r} must be an amount of USD above 0 (at most 100000)")
        caps[key] = float(value)
    return caps


def _rekognition(section: dict[str, Any], fail: Callable[[str, str], ConfigError]) -> RekognitionSettings:
    """The [rekognition] table, checked here so errors name lab.toml's fields rather than the function's."""
    defaults = RekognitionSettings()
    features = section.get("features", list(defaults.features))
    if not isinstance(features, list) or not features:
        raise fail("rekognition.features", f"{features!r} must be a non-empty list (choose from {', '.join(FEATURES)})")
    for index, feature in enumerate(features):
        if not isinstance(feature, str) or feature not in FEATURES:
            raise fail(f"rekognition.features[{index}]", f"{feature!r} is not one of {', '.join(FEATURES)}")
        if feature in features[:index]:
            raise fail(f"rekognition.features[{index}]", f"'{feature}' is listed twice")
    confidence = section.get("min_confidence", defaults.min_confidence)
    if not isinstance(confidence, (int, float)) or isinstance(confidence, bool) or not 0 <= confidence <= 100:
        raise fail("rekognition.min_confidence", f"{confidence!r} must be a percentage between 0 and 100")
    max_labels = _whole(section, "max_labels", defaults.max_labels, 1, 1000, "labels", fail, "rekognition")
    return RekognitionSettings(tuple(features), float(confidence), max_labels)


def to_toml(config: LabConfig) -> str:
    """The course file that `load_config` reads back into an equal LabConfig."""
    classroom = config.classroom
    students = ", ".join(f'"{student}"' for student in config.students)
    people = f"students = [{students}]\n\n" if classroom.roster is None and not classroom.solo else ""
    ou = f'organizational_unit = "{classroom.organizational_unit}"\n' if classroom.organizational_unit else ""
    roster = f'roster = "{classroom.roster.as_posix()}"\n' if classroom.roster is not None else ""
    sm = config.sagemaker
    features = ", ".join(f'"{name}"' for name in config.rekognition.features)
    policy = config.guard.policy
    email = f'instructor_email = "{config.instructor_email}"\n' if config.instructor_email else ""
    return (
        f"{people}"
        f'[course]\nid = "{config.course_id}"\naccount = "{config.account}"\nregion = "{config.region}"\n'
        f"expires = {config.expires.isoformat()}\nbudget_usd = {config.budget_usd}\n{email}\n"
        f'[sagemaker]\ninstance_type = "{sm.instance_type}"\nvolume_gb = {sm.volume_gb}\n'
        f"idle_minutes = {sm.idle_minutes}\n\n"
        f"[rekognition]\nfeatures = [{features}]\n"
        f"min_confidence = {config.rekognition.min_confidence}\nmax_labels = {config.rekognition.max_labels}\n\n"
        f"[containers]\nclass_repository = {str(config.containers.class_repository).lower()}\n"
        f"keep_images = {config.containers.keep_images}\n\n"
        f"[guard]\ndry_run = {str(policy.dry_run).lower()}\nevery_minutes = {config.guard.every_minutes}\n"
        f'idle_minutes = {policy.idle_minutes}\nafter_hours = "{policy.after_hours}"\ntimezone = "{policy.timezone}"\n'
        f"max_actions = {policy.max_actions}\n"
        + "".join(f"{key} = {getattr(policy, key)}\n" for key in ("max_usd_per_student_day", "max_usd_class_day")
                  if getattr(policy, key) is not None)
        + "\n"
        f'[classroom]\nmode = "{classroom.mode}"\n{roster}{ou}'
        f"max_concurrent_percentage = {classroom.max_concurrent_percentage}\n"
        f"failure_tolerance_percentage = {classroom.failure_tolerance_percentage}\n\n[dlami]\n"
        + "".join(f"{f.name} = {_toml_value(getattr(config.dlami, f.name))}\n" for f in fields(DlamiSettings)
                  if getattr(config.dlami, f.name) is not None)
    )


def _toml_value(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)
