"""scripts/setup's choice of Python: the newest of 3.13, 3.12, 3.11 that runs, or PYTHON; never an unsupported one.
Stand-in interpreters answer setup's version probe the way a real one (or a pyenv shim that cannot run) would."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT

SETUP = ROOT / "scripts" / "setup"


def fake(directory: Path, name: str, answer: str | None) -> Path:
    """An interpreter that prints `answer` for setup's probe, or fails like a shim of an unselected version."""
    path = directory / name
    body = f"echo {answer}" if answer else "echo \"pyenv: $(basename \"$0\"): command not found\" >&2; exit 127"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def which(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    clean["PATH"] = f"{tmp_path}{os.pathsep}{clean['PATH']}"
    return subprocess.run([str(SETUP), "--which-python"], env={**clean, **env}, capture_output=True, text=True,
                          timeout=60)


def test_newest_supported_python_that_runs_is_chosen(tmp_path: Path) -> None:
    fake(tmp_path, "python3.13", None)  # a pyenv shim whose version is not selected: exists, does not run
    fake(tmp_path, "python3.12", "3.12")
    done = which(tmp_path)
    assert done.returncode == 0 and done.stdout.split() == ["python3.12", "3.12"]
    fake(tmp_path, "python3.13", "3.13")
    assert which(tmp_path).stdout.split() == ["python3.13", "3.13"]


def test_python_override_is_used_or_refused_in_one_line(tmp_path: Path) -> None:
    chosen = fake(tmp_path, "mypython", "3.11")
    assert which(tmp_path, PYTHON=str(chosen)).stdout.split() == [str(chosen), "3.11"]
    old = fake(tmp_path, "python3.10", None)
    done = which(tmp_path, PYTHON=str(old))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"setup: PYTHON={old} is not Python 3.13, 3.12, 3.11")
    assert done.stderr.count("\n") == 1


def test_this_machine_has_a_supported_python() -> None:
    done = subprocess.run([str(SETUP), "--which-python"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split()[1] in ("3.11", "3.12", "3.13")


def test_cdk_json_runs_the_app_through_the_launcher_and_setup_links_the_cli() -> None:
    import json

    assert json.loads((ROOT / "cdk.json").read_text())["app"] == "scripts/cdk-app"
    assert os.access(ROOT / "scripts" / "cdk-app", os.X_OK)
    link = ROOT / ".venv" / "bin" / "cdk"
    assert link.is_symlink() and link.resolve() == (ROOT / "scripts" / "cdk").resolve()
