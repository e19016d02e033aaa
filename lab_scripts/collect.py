"""Collect students' notebooks for grading, mid-course: from the synced copy of each notebook's volume in the
student's bucket (`notebook/`, see boot_scripts) into one local folder per student.

Read-only on the student's side (ListObjectsV2 and GetObject only), so collecting never changes their work.
Each `*.ipynb` comes with the files beside it in its folder (the data and modules a notebook opens by relative
name); subfolders are not followed, so a dataset folder next to a notebook is not pulled in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from lab_scripts.boot_scripts import NOTEBOOK_PREFIX

# A file beside a notebook larger than this is listed as skipped, not copied (a model checkpoint, a dataset).
MAX_FILE_BYTES = 50 * 1024 * 1024
INDEX = ".labkit-collected.json"
_CHECKPOINTS = ".ipynb_checkpoints"
_UNSAFE = re.compile(r"[\x00-\x1f\\]")


class CollectError(ValueError):
    """A collect request that cannot be done; the message names the student or path."""


@dataclass
class CollectResult:
    student: str
    folder: Path
    notebooks: int = 0
    files: int = 0  # notebooks included
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)  # keys over MAX_FILE_BYTES


def _segment(part: str) -> str:
    """One path segment that means nothing special to a file system."""
    part = _UNSAFE.sub("_", part)
    return "_" if part in ("", ".", "..") else part


def _local_names(keys: list[str]) -> dict[str, PurePosixPath]:
    """key -> relative local path, unique, with no file where another needs a folder (`a` and `a/b.ipynb`)."""
    taken_files: set[PurePosixPath] = {PurePosixPath(INDEX)}
    taken_dirs: set[PurePosixPath] = set()
    names: dict[str, PurePosixPath] = {}
    # Folders first: a key that is also a folder of other keys is the one renamed.
    for key in sorted(keys, key=lambda k: (-k.count("/"), k)):
        parts = [_segment(p) for p in key.split("/") if p != ""] or ["_"]
        path = PurePosixPath(*parts)
        parents = set(path.parents) - {PurePosixPath(".")}
        while path in taken_files or path in taken_dirs or parents & taken_files:
            if parents & taken_files:
                raise CollectError(f"cannot place {key!r}: a file already holds one of its folders' names")
            path = path.with_name(f"{path.stem}~{len(names)}{path.suffix}")
        taken_files.add(path)
        taken_dirs |= parents
        names[key] = path
    return names


def notebook_files(s3: Any, bucket: str, prefix: str = NOTEBOOK_PREFIX) -> list[dict[str, Any]]:
    """Current objects under `prefix` in folders that hold a notebook: the notebooks and the files beside them."""
    objects = [obj for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
               for obj in page.get("Contents", [])]

    def folder(key: str) -> str:
        return key.rsplit("/", 1)[0] if "/" in key else ""

    def checkpoint(key: str) -> bool:
        return _CHECKPOINTS in key.split("/")

    with_notebooks = {folder(o["Key"]) for o in objects if o["Key"].endswith(".ipynb") and not checkpoint(o["Key"])}
    return [o for o in objects if folder(o["Key"]) in with_notebooks and not o["Key"].endswith("/")
            and not checkpoint(o["Key"])]


def collect(s3: Any, bucket: str, student: str, out_dir: Path, *, prefix: str = NOTEBOOK_PREFIX,
            max_file_bytes: int = MAX_FILE_BYTES) -> CollectResult:
    """Copy `student`'s notebooks (and the files beside them) into out_dir/<student>/, overwriting an earlier
    collection's copies; an index there maps each local file to its key and the time it was saved."""
    if _segment(student) != student or "/" in student:
        raise CollectError(f"student id {student!r} cannot be a folder name")
    found = notebook_files(s3, bucket, prefix)
    root = out_dir / student
    result = CollectResult(student, root)
    names = _local_names([obj["Key"][len(prefix):] for obj in found])
    index = []
    for obj in found:
        key = obj["Key"]
        if obj["Size"] > max_file_bytes:
            result.skipped.append(key)
            continue
        target = root.joinpath(*names[key[len(prefix):]].parts)
        if target.is_dir():
            raise CollectError(f"{target} is a folder; move it away to collect {key!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        target.write_bytes(body)
        result.files += 1
        result.notebooks += key.endswith(".ipynb")
        result.bytes += len(body)
        index.append({"file": str(target.relative_to(root)), "key": key, "size": len(body),
                      "saved": obj["LastModified"].isoformat()})
    if index or result.skipped:
        root.mkdir(parents=True, exist_ok=True)
        (root / INDEX).write_text(json.dumps({"bucket": bucket, "files": index, "skipped": result.skipped},
                                             indent=1, ensure_ascii=False), encoding="utf-8")
    return result
