"""Every AWS name labkit creates is derived here, and checked against AWS's limits here.

botocore does not enforce name limits client-side and CloudFormation only fails half-way through a
deploy, so a name that is too long must be caught before anything is created.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

TAG_COURSE = "labkit:course"
TAG_STUDENT = "labkit:student"
TAG_MANAGED_BY = "labkit:managed-by"

# Account-per-student mode: the class stack holding the stack set, the stack set itself, and the one student id
# its template is written for (every student's account holds the same names: the account tells them apart).
CLASSROOM = "LabClassroom"
STUDENT_ACCOUNT = "LabStudent"
PLACEHOLDER_STUDENT = "student"
# Solo mode: one learner in their own account. Their environment is one student's, under this fixed id, so every
# function that takes a student works unchanged; only the stacks drop the suffix (README, "On your own").
SOLO_STUDENT = "me"
# A kept bucket (solo mode) ends in `-` and this many hex digits of its stack's id: a bucket a plain `cdk destroy`
# kept never has the name the next deploy creates, and the prefix before it still says whose it is.
GENERATION_DIGITS = 8

# Identifiers that end up inside bucket names, so they use the strictest charset of all the services.
COURSE_ID = re.compile(r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$")
STUDENT_ID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,22}[a-z0-9])?$")
# Loose on purpose (RFC 5322 allows far more); it catches typos, and SNS, Budgets and Organizations confirm the
# address themselves.
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


@dataclass(frozen=True)
class NameRule:
    kind: str
    max_len: int
    pattern: re.Pattern[str]
    charset: str
    min_len: int = 1


RULES: dict[str, NameRule] = {
    rule.kind: rule
    for rule in (
        NameRule("S3 bucket", 63, re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"), "a-z 0-9 . -", min_len=3),
        NameRule("IAM role", 64, re.compile(r"^[\w+=,.@-]+$"), "letters, digits, +=,.@_-"),
        NameRule("IAM user", 64, re.compile(r"^[\w+=,.@-]+$"), "letters, digits, +=,.@_-"),
        NameRule("IAM group", 128, re.compile(r"^[\w+=,.@-]+$"), "letters, digits, +=,.@_-"),
        NameRule(
            "ECR repository",
            256,
            re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$"),
            "a-z 0-9 and single . _ - / between them",
            min_len=2,
        ),
        NameRule("IAM path", 512, re.compile(r"^/([\x21-\x7e]*/)?$"), "printable ASCII, starting and ending with /"),
        NameRule("SageMaker notebook", 63, re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"), "letters, digits, -"),
        NameRule(
            "SageMaker lifecycle config", 63, re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"), "letters, digits, -"
        ),
        NameRule("IAM instance profile", 128, re.compile(r"^[\w+=,.@-]+$"), "letters, digits, +=,.@_-"),
        NameRule("CloudWatch alarm", 255, re.compile(r"^[\x20-\x7e]+$"), "printable ASCII"),
        NameRule("CloudFormation stack", 128, re.compile(r"^[A-Za-z][A-Za-z0-9-]*$"), "letters, digits, -"),
        NameRule("Lambda function", 64, re.compile(r"^[a-zA-Z0-9_-]+$"), "letters, digits, -_"),
        NameRule("SQS queue", 80, re.compile(r"^[a-zA-Z0-9_-]+$"), "letters, digits, -_"),
        NameRule("CloudWatch log group", 512, re.compile(r"^[\w./#-]+$"), "letters, digits, _-./#"),
        NameRule("SNS topic", 256, re.compile(r"^[a-zA-Z0-9_-]+$"), "letters, digits, -_"),
        NameRule("EventBridge rule", 64, re.compile(r"^[.\w-]+$"), "letters, digits, .-_"),
        NameRule("AWS budget", 100, re.compile(r"^[^:\\]+$"), "anything but : and \\"),
    )
}


def containers_user(course: str, student: str) -> str:
    """A student's IAM user name (LabContainers); Session Manager names their sessions '<user>-<random id>'."""
    return f"{course}-{student}-dlc"


def session_collisions(students: Iterable[str], course: str = "course") -> list[tuple[str, str]]:
    """Pairs (a, b) of students where b's IAM user name starts with a's user name and '-': a session id of b
    ('<user b>-<random>') then also starts with '<user a>-', the pattern that bounds a's own sessions. The course
    is a common prefix of every user name, so any course finds the same pairs."""
    users = {containers_user(course, student): student for student in students}
    found = []
    for user, student in users.items():
        for index, char in enumerate(user):
            if char == "-" and user[:index] in users:
                found.append((users[user[:index]], student))
    return found


class AwsNameError(ValueError):
    """A derived name that AWS would reject; the message says which name and why."""


def check(kind: str, name: str) -> str:
    rule = RULES[kind]
    if not rule.min_len <= len(name) <= rule.max_len:
        raise AwsNameError(
            f"{kind} name '{name}' is {len(name)} characters; AWS allows {rule.min_len}-{rule.max_len}"
        )
    if not rule.pattern.match(name):
        raise AwsNameError(f"{kind} name '{name}' has characters AWS rejects (allowed: {rule.charset})")
    if kind == "S3 bucket" and (".." in name or name.startswith("xn--") or name.endswith("-s3alias")):
        raise AwsNameError(f"{kind} name '{name}' uses a form S3 reserves")
    return name


@dataclass(frozen=True)
class StudentNames:
    course: str
    student: str
    account: str
    region: str

    @property
    def bucket(self) -> str:
        # Account and region make the globally unique bucket name predictable, so IAM can name it exactly.
        return f"{self.course}-{self.student}-{self.account}-{self.region}"

    @property
    def kept_bucket_prefix(self) -> str:
        """Solo mode: every bucket of this student's stack generations starts with this (`bucket` + `-`)."""
        return f"{self.bucket}-"

    @property
    def longest_kept_bucket(self) -> str:
        """The longest name a kept bucket takes, for the length check before deploy."""
        return f"{self.kept_bucket_prefix}{'0' * GENERATION_DIGITS}"

    @property
    def notebook(self) -> str:
        return f"{self.course}-{self.student}"

    @property
    def notebook_role(self) -> str:
        return f"{self.course}-{self.student}-notebook"

    @property
    def lifecycle_config(self) -> str:
        return f"{self.course}-{self.student}-autostop"

    @property
    def workstation(self) -> str:
        """Name tag of the student's GPU instance (what the EC2 console shows)."""
        return f"{self.course}-{self.student}-gpu"

    @property
    def idle_alarm(self) -> str:
        return f"{self.course}-{self.student}-gpu-idle"

    @property
    def containers_user(self) -> str:
        return containers_user(self.course, self.student)

    @property
    def class_repository(self) -> str:
        """The student's own repository in the class namespace: the IAM policy names it from the caller's student
        tag, so one statement covers the class and nobody else can push, pull or list it."""
        return f"{self.course}-class/{self.student}"

    def validate(self) -> None:
        """Raise AwsNameError for the first name of this student that AWS would reject."""
        check("S3 bucket", self.bucket)
        check("SageMaker notebook", self.notebook)
        check("IAM role", self.notebook_role)
        check("SageMaker lifecycle config", self.lifecycle_config)
        check("CloudWatch alarm", self.idle_alarm)
        check("IAM user", self.containers_user)
        check("ECR repository", self.class_repository)


@dataclass(frozen=True)
class RekognitionNames:
    """LabRekognition exists once per class, so its names carry the course, not a student."""

    course: str
    account: str
    region: str

    @property
    def bucket(self) -> str:
        return f"{self.course}-rekognition-{self.account}-{self.region}"

    @property
    def function(self) -> str:
        return f"{self.course}-rekognition-labels"

    @property
    def role(self) -> str:
        return f"{self.course}-rekognition-labels"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.course}-rekognition-failed"

    @property
    def log_group(self) -> str:
        # Lambda's default group name: if the function's LoggingConfig were ignored, its logs still land here.
        return f"/aws/lambda/{self.function}"

    def validate(self) -> None:
        """Raise AwsNameError for the first LabRekognition name AWS would reject."""
        check("S3 bucket", self.bucket)
        check("Lambda function", self.function)
        check("IAM role", self.role)
        check("SQS queue", self.dead_letter_queue)
        check("CloudWatch log group", self.log_group)


@dataclass(frozen=True)
class GuardNames:
    """LabGuard exists once per course: the scheduled guard function, its report topic and the class budget."""

    course: str

    @property
    def function(self) -> str:
        return f"{self.course}-guard"

    @property
    def role(self) -> str:
        return f"{self.course}-guard"

    @property
    def teardown_role(self) -> str:
        # The role CloudFormation assumes to delete the lab stacks; the function only passes it.
        return f"{self.course}-guard-teardown"

    @property
    def stop_role(self) -> str:
        # Account-per-student mode: the stop-only role in each student's account that the guard assumes.
        return f"{self.course}-guard-stop"

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def topic(self) -> str:
        return f"{self.course}-guard-reports"

    @property
    def schedule(self) -> str:
        return f"{self.course}-guard-schedule"

    @property
    def budget(self) -> str:
        return f"{self.course}-class-budget"

    def validate(self) -> None:
        """Raise AwsNameError for the first LabGuard name AWS would reject."""
        check("Lambda function", self.function)
        check("IAM role", self.role)
        check("IAM role", self.teardown_role)
        check("CloudWatch log group", self.log_group)
        check("SNS topic", self.topic)
        check("EventBridge rule", self.schedule)
        check("AWS budget", self.budget)


@dataclass(frozen=True)
class CourseNames:
    course: str
    account: str
    region: str

    def stack(self, lab: str, student: str | None = None) -> str:
        """CloudFormation name of a lab stack: `<course>-<lab>` for a class stack, `<course>-<lab>-<student>` for
        a student's. The guard finds a lab's stacks by this prefix, so every name of a lab starts with it."""
        return f"{self.course}-{lab}" if student is None else f"{self.course}-{lab}-{student}"

    @property
    def iam_path(self) -> str:
        # A per-course IAM path lets audits list exactly this course's roles and users.
        return f"/labkit/{self.course}/"

    @property
    def dlami_role(self) -> str:
        # One role for the class's GPU instances: they need the same few permissions, none per student.
        return f"{self.course}-dlami"

    @property
    def vpc(self) -> str:
        return f"{self.course}-lab"

    @property
    def containers_group(self) -> str:
        return f"{self.course}-containers"

    @property
    def class_repository(self) -> str:
        """The course's shared repository: the instructor pushes base images, students pull them. Students' own
        repositories sit below it (`StudentNames.class_repository`). Starts with the course id like every other
        name, so the audit finds it by prefix."""
        return f"{self.course}-class"

    def student(self, student: str) -> StudentNames:
        return StudentNames(self.course, student, self.account, self.region)

    @property
    def rekognition(self) -> RekognitionNames:
        return RekognitionNames(self.course, self.account, self.region)

    @property
    def guard(self) -> GuardNames:
        return GuardNames(self.course)

    def validate_course(self, labs: list[str]) -> None:
        """Raise AwsNameError for the first course-level name AWS would reject."""
        check("IAM path", self.iam_path)
        check("IAM role", self.dlami_role)
        check("IAM instance profile", self.dlami_role)
        check("IAM group", self.containers_group)
        check("ECR repository", self.class_repository)
        for lab in labs:
            check("CloudFormation stack", self.stack(lab))
        check("CloudFormation stack", self.stack(CLASSROOM))
        # A stack set's name follows the stack name rules.
        check("CloudFormation stack", self.stack(STUDENT_ACCOUNT))
        if "LabRekognition" in labs:
            self.rekognition.validate()
        if "LabGuard" in labs:
            self.guard.validate()
