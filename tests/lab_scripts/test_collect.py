"""Collecting notebooks for grading: the right files, safe local names, and only reads on the student's bucket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab_scripts import collect
from tests.lab_scripts.conftest import versioned_bucket

BUCKET = "ml101-alice-123456789012-us-east-1"


@pytest.fixture
def s3(aws: Any) -> Any:
    client = versioned_bucket(aws, BUCKET)
    files = {
        "notebook/lab1.ipynb": b'{"cells": []}',
        "notebook/helpers.py": b"def f(): pass",
        "notebook/data": b"a file named like the folder below",
        "notebook/data/lab2.ipynb": b"{}",
        "notebook/data/train.csv": b"x,y",
        "notebook/data/raw/huge.bin": b"in a subfolder: not beside a notebook",
        "notebook/scratch/notes.txt": b"no notebook in this folder",
        "notebook/.ipynb_checkpoints/lab1-checkpoint.ipynb": b"{}",
        "notebook/r\u00e9sum\u00e9 work/final (2).ipynb": b"{}",
        "notebook/runs//1/a.ipynb": b"double",
        "notebook/runs/1/a.ipynb": b"single",
        "notebook/../escape.ipynb": b"dot dot",
        "work/outside-the-synced-prefix.ipynb": b"{}",
    }
    for key, body in files.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    return client


def collected(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()
            and p.name != collect.INDEX}


def test_notebooks_and_the_files_beside_them_are_copied(s3: Any, tmp_path: Path) -> None:
    result = collect.collect(s3, BUCKET, "alice", tmp_path)
    files = collected(tmp_path / "alice")
    assert files["lab1.ipynb"] == b'{"cells": []}' and files["helpers.py"] == b"def f(): pass"
    assert files["data/lab2.ipynb"] == b"{}" and files["data/train.csv"] == b"x,y"
    assert files["résumé work/final (2).ipynb"] == b"{}"
    assert not any("huge.bin" in name or "notes.txt" in name or "checkpoint" in name or "outside" in name
                   for name in files)
    # `data` (a file) and `data/` (a folder), `runs//1` and `runs/1`: both kept, one renamed.
    assert sorted(body for name, body in files.items() if name.startswith("data") and "/" not in name) == [
        b"a file named like the folder below"]
    assert sorted(body for name, body in files.items() if name.startswith("runs/1/")) == [b"double", b"single"]
    assert (result.notebooks, result.files) == (6, 9)
    assert result.bytes == sum(map(len, files.values()))
    assert all((tmp_path / "alice") in (tmp_path / "alice" / name).resolve().parents for name in files)
    index = json.loads((tmp_path / "alice" / collect.INDEX).read_text())
    assert {entry["key"] for entry in index["files"]} >= {"notebook/lab1.ipynb", "notebook/../escape.ipynb"}


def test_collecting_only_reads(s3: Any, tmp_path: Path) -> None:
    calls: list[str] = []
    s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    collect.collect(s3, BUCKET, "alice", tmp_path)
    assert set(calls) == {"ListObjectsV2", "GetObject"}


def test_large_files_are_listed_not_copied(s3: Any, tmp_path: Path) -> None:
    result = collect.collect(s3, BUCKET, "alice", tmp_path, max_file_bytes=10)
    assert "notebook/data" in result.skipped and "notebook/lab1.ipynb" in result.skipped
    assert "helpers.py" not in collected(tmp_path / "alice")  # 13 bytes


def test_a_second_collection_overwrites_the_first(s3: Any, tmp_path: Path) -> None:
    collect.collect(s3, BUCKET, "alice", tmp_path)
    s3.put_object(Bucket=BUCKET, Key="notebook/lab1.ipynb", Body=b'{"cells": ["v2"]}')
    collect.collect(s3, BUCKET, "alice", tmp_path)
    assert (tmp_path / "alice" / "lab1.ipynb").read_bytes() == b'{"cells": ["v2"]}'


def test_nothing_synced_yet_collects_nothing(aws: Any, tmp_path: Path) -> None:
    s3 = versioned_bucket(aws, BUCKET)
    result = collect.collect(s3, BUCKET, "bob", tmp_path)
    assert (result.files, result.bytes) == (0, 0) and not (tmp_path / "bob").exists()


def test_a_student_id_must_be_a_folder_name(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(collect.CollectError, match="student id '../x'"):
        collect.collect(s3, BUCKET, "../x", tmp_path)
