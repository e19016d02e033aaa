"""Access keys of the course's container users: issued to a private file, deactivated and deleted at course end.

Keys are created here, not in the stack: an AWS::IAM::AccessKey puts its secret into the template's
outputs or the deploy log. The secret goes only into a file that its owner alone can read; what this
module returns for printing never contains it.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class KeyInfo:
    user: str
    access_key_id: str
    status: str
    created: datetime | None = None


@dataclass(frozen=True)
class IssuedKey:
    user: str
    access_key_id: str
    # Kept out of repr so that logging or printing the object cannot leak it.
    secret_access_key: str = field(repr=False)


class AccessKeyError(RuntimeError):
    """A key action that cannot be done; str() is one line saying why."""


def masked(access_key_id: str) -> str:
    """Enough of a key id to tell keys apart in a log, not enough to look one up by."""
    return f"{access_key_id[:4]}...{access_key_id[-4:]}"


def _not_found(exc: ClientError, user: str) -> AccessKeyError | None:
    if exc.response["Error"]["Code"] == "NoSuchEntity":
        return AccessKeyError(f"IAM user '{user}' does not exist (deploy LabContainers first)")
    return None


def list_keys(iam: Any, user: str) -> list[KeyInfo]:
    try:
        pages = list(iam.get_paginator("list_access_keys").paginate(UserName=user))
    except ClientError as exc:
        raise _not_found(exc, user) or exc from None
    return [
        KeyInfo(user, item["AccessKeyId"], item["Status"], item.get("CreateDate"))
        for page in pages
        for item in page["AccessKeyMetadata"]
    ]


def issue(iam: Any, user: str) -> IssuedKey:
    """A new key for `user`. Refuses when one exists: one key per student keeps revocation obvious."""
    existing = list_keys(iam, user)
    if existing:
        ids = ", ".join(masked(key.access_key_id) for key in existing)
        raise AccessKeyError(f"{user} already has {len(existing)} access key(s) ({ids}); delete them first")
    created = iam.create_access_key(UserName=user)["AccessKey"]
    return IssuedKey(user, created["AccessKeyId"], created["SecretAccessKey"])


def deactivate(iam: Any, user: str) -> list[str]:
    """Mark every key of `user` Inactive (reversible, unlike delete); returns the key ids changed."""
    changed = []
    for key in list_keys(iam, user):
        if key.status != "Inactive":
            iam.update_access_key(UserName=user, AccessKeyId=key.access_key_id, Status="Inactive")
            changed.append(key.access_key_id)
    return changed


def delete(iam: Any, user: str) -> list[str]:
    """Delete every key of `user`; returns the key ids deleted. IAM cannot delete a user that still has keys."""
    deleted = []
    for key in list_keys(iam, user):
        iam.delete_access_key(UserName=user, AccessKeyId=key.access_key_id)
        deleted.append(key.access_key_id)
    return deleted


def credentials_text(key: IssuedKey, profile: str, region: str) -> str:
    """The key as a profile of an AWS shared credentials file (what `aws configure` writes)."""
    return (
        f"# {key.user}: AWS Deep Learning Containers pull access. Keep this file private; region {region}.\n"
        f"[{profile}]\n"
        f"aws_access_key_id = {key.access_key_id}\n"
        f"aws_secret_access_key = {key.secret_access_key}\n"
    )


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: a leading ' stops =, +, -, @, tab and CR from starting a formula.

    A secret that begins with + therefore reads '+...' in the CSV; the credentials file never needs this.
    """
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def csv_text(key: IssuedKey, region: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["User name", "Access key ID", "Secret access key", "Region"])
    writer.writerow([csv_cell(value) for value in (key.user, key.access_key_id, key.secret_access_key, region)])
    return buffer.getvalue()


def write_private(path: Path, text: str) -> Path:
    """Write `text` to `path` readable by its owner only (0600), never visible with wider permissions."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        # The umask can only narrow the mode; fchmod makes it exactly 0600 whatever it is.
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
    os.replace(temporary, path)
    return path
