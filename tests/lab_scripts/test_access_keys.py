"""Access keys under moto: one per student, private files only, spreadsheet-safe CSV, revocable."""

from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path
from typing import Any

import boto3
import pytest

from lab_scripts import access_keys
from lab_scripts.access_keys import AccessKeyError, IssuedKey

USER = "ml101-alice-dlc"


@pytest.fixture
def iam(aws: Any) -> Any:
    client = aws("iam")
    client.create_user(UserName=USER, Path="/labkit/ml101/")
    return client


def test_issue_returns_the_secret_once_and_never_in_repr(iam: Any) -> None:
    key = access_keys.issue(iam, USER)
    assert key.secret_access_key and key.secret_access_key not in repr(key)
    assert [k.access_key_id for k in access_keys.list_keys(iam, USER)] == [key.access_key_id]
    assert access_keys.masked(key.access_key_id) == f"{key.access_key_id[:4]}...{key.access_key_id[-4:]}"


def test_a_second_key_is_refused_until_the_first_is_deleted(iam: Any) -> None:
    first = access_keys.issue(iam, USER)
    with pytest.raises(AccessKeyError, match=r"already has 1 access key\(s\) \(AKIA\.\.\.") as caught:
        access_keys.issue(iam, USER)
    assert first.access_key_id not in str(caught.value)
    assert access_keys.delete(iam, USER) == [first.access_key_id]
    assert access_keys.issue(iam, USER).access_key_id != first.access_key_id


def test_deactivate_then_delete(iam: Any) -> None:
    key = access_keys.issue(iam, USER)
    assert access_keys.deactivate(iam, USER) == [key.access_key_id]
    assert access_keys.deactivate(iam, USER) == []  # already inactive
    assert [k.status for k in access_keys.list_keys(iam, USER)] == ["Inactive"]
    assert access_keys.delete(iam, USER) == [key.access_key_id]
    assert access_keys.list_keys(iam, USER) == []


def test_unknown_user_is_one_line(aws: Any) -> None:
    for action in (access_keys.issue, access_keys.delete, access_keys.deactivate):
        with pytest.raises(AccessKeyError, match="^IAM user 'ml101-nobody-dlc' does not exist"):
            action(aws("iam"), "ml101-nobody-dlc")


def test_credentials_file_is_private_and_botocore_reads_it(iam: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    key = access_keys.issue(iam, USER)
    path = tmp_path / "keys" / "alice.credentials"
    old_umask = os.umask(0)  # the most permissive umask must not widen the file
    try:
        access_keys.write_private(path, access_keys.credentials_text(key, "ml101", "us-east-1"))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["alice.credentials"]  # no temporary file left
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable)
    credentials = boto3.Session(profile_name="ml101").get_credentials()
    assert (credentials.access_key, credentials.secret_key) == (key.access_key_id, key.secret_access_key)


def test_rewriting_a_world_readable_file_makes_it_private(tmp_path: Path) -> None:
    path = tmp_path / "alice.credentials"
    path.write_text("old")
    path.chmod(0o644)
    access_keys.write_private(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("dangerous", ["=cmd|' /C calc'!A0", "+SUM(1)", "-2+3", "@SUM(1)", "\tx", "\rx"])
def test_csv_cells_cannot_start_a_formula(dangerous: str) -> None:
    assert access_keys.csv_cell(dangerous) == f"'{dangerous}"
    assert access_keys.csv_cell("AKIAEXAMPLE") == "AKIAEXAMPLE"


def test_csv_has_one_escaped_row(tmp_path: Path) -> None:
    key = IssuedKey("ml101-alice-dlc", "AKIAEXAMPLE0000", "+secret/starts=with+plus")
    path = access_keys.write_private(tmp_path / "alice.csv", access_keys.csv_text(key, "us-east-1"))
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows == [["User name", "Access key ID", "Secret access key", "Region"],
                    ["ml101-alice-dlc", "AKIAEXAMPLE0000", "'+secret/starts=with+plus", "us-east-1"]]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
