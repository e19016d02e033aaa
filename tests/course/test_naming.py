"""Derived AWS names and the limits they are checked against."""

from __future__ import annotations

import pytest

from course.naming import AwsNameError, CourseNames, check


def test_names_are_derived_from_course_student_account_region() -> None:
    names = CourseNames("ml101", "123456789012", "eu-west-1").student("alice")
    assert names.bucket == "ml101-alice-123456789012-eu-west-1"
    assert names.notebook == "ml101-alice"
    assert names.notebook_role == "ml101-alice-notebook"
    assert names.lifecycle_config == "ml101-alice-autostop"
    assert names.containers_user == "ml101-alice-dlc"
    names.validate()
    course = CourseNames("ml101", "123456789012", "eu-west-1")
    assert (course.containers_group, course.class_repository) == ("ml101-containers", "ml101-class")
    course.validate_course(["LabContainers"])


@pytest.mark.parametrize(
    ("kind", "name", "reason"),
    [
        ("S3 bucket", "ab", "characters; AWS allows 3-63"),
        ("S3 bucket", "a" * 64, "characters; AWS allows 3-63"),
        ("S3 bucket", "Upper-case", "characters AWS rejects"),
        ("S3 bucket", "two..dots", "form S3 reserves"),
        ("S3 bucket", "xn--punycode", "form S3 reserves"),
        ("S3 bucket", "name-s3alias", "form S3 reserves"),
        ("IAM role", "r" * 65, "AWS allows 1-64"),
        ("IAM role", "has space", "characters AWS rejects"),
        ("SageMaker notebook", "n" * 64, "AWS allows 1-63"),
        ("SageMaker notebook", "under_score", "characters AWS rejects"),
        ("SageMaker notebook", "-leading", "characters AWS rejects"),
        ("CloudFormation stack", "1stack", "characters AWS rejects"),
        ("CloudFormation stack", "s" * 129, "AWS allows 1-128"),
        ("IAM path", "labkit/", "characters AWS rejects"),
        ("Lambda function", "f" * 65, "AWS allows 1-64"),
        ("Lambda function", "ml101.labels", "characters AWS rejects"),
        ("SQS queue", "q" * 81, "AWS allows 1-80"),
        ("SQS queue", "ml101 failed", "characters AWS rejects"),
        ("CloudWatch log group", "/" + "g" * 512, "AWS allows 1-512"),
        ("CloudWatch log group", "/aws/lambda/a b", "characters AWS rejects"),
        ("IAM user", "u" * 65, "AWS allows 1-64"),
        ("IAM user", "has/slash", "characters AWS rejects"),
        ("IAM group", "g" * 129, "AWS allows 1-128"),
        ("IAM group", "has space", "characters AWS rejects"),
        ("ECR repository", "a", "AWS allows 2-256"),
        ("ECR repository", "r" * 257, "AWS allows 2-256"),
        ("ECR repository", "Upper", "characters AWS rejects"),
        ("ECR repository", "double--dash", "characters AWS rejects"),
        ("ECR repository", "trailing/", "characters AWS rejects"),
        ("ECR repository", "-leading", "characters AWS rejects"),
        ("SNS topic", "t" * 257, "AWS allows 1-256"),
        ("SNS topic", "ml101.reports", "characters AWS rejects"),
        ("EventBridge rule", "r" * 65, "AWS allows 1-64"),
        ("EventBridge rule", "ml101 guard", "characters AWS rejects"),
        ("AWS budget", "b" * 101, "AWS allows 1-100"),
        ("AWS budget", "ml101:budget", "characters AWS rejects"),
    ],
)
def test_limits(kind: str, name: str, reason: str) -> None:
    with pytest.raises(AwsNameError, match=reason):
        check(kind, name)


def test_rekognition_names_are_per_course() -> None:
    names = CourseNames("ml101", "123456789012", "eu-west-1").rekognition
    assert names.bucket == "ml101-rekognition-123456789012-eu-west-1"
    assert (names.function, names.dead_letter_queue) == ("ml101-rekognition-labels", "ml101-rekognition-failed")
    assert names.log_group == "/aws/lambda/ml101-rekognition-labels"
    names.validate()
    # The longest course id in the region with the longest name still fits every limit.
    CourseNames("a" * 20, "123456789012", "ap-southeast-5").validate_course(["LabRekognition"])


def test_longest_valid_names_pass() -> None:
    assert check("S3 bucket", "a" * 63)
    assert check("IAM role", "r" * 64)
    assert check("SageMaker notebook", "a-" * 31 + "a")
    assert check("Lambda function", "f" * 64) and check("SQS queue", "q" * 80)
    assert check("IAM user", "u" * 64) and check("IAM group", "g" * 128)
    assert check("ECR repository", "ml101/class_images.v2") and check("ECR repository", "ab")


def test_guard_names_are_per_course_and_fit_with_the_longest_course_id() -> None:
    names = CourseNames("ml101", "123456789012", "eu-west-1").guard
    assert (names.function, names.role, names.teardown_role) == ("ml101-guard", "ml101-guard", "ml101-guard-teardown")
    assert (names.topic, names.schedule, names.budget) == ("ml101-guard-reports", "ml101-guard-schedule",
                                                           "ml101-class-budget")
    assert names.log_group == "/aws/lambda/ml101-guard"
    CourseNames("a" * 20, "123456789012", "ap-southeast-5").validate_course(["LabGuard"])
