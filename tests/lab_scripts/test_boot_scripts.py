"""The rendered on-start script: valid bash, valid embedded Python, within SageMaker's size limit."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from lab_scripts.boot_scripts import MAX_SCRIPT_CHARS, render_gpu_user_data, render_on_start


def test_script_fits_sagemaker_limit() -> None:
    assert len(render_on_start(60)) <= MAX_SCRIPT_CHARS


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_script_is_valid_bash(tmp_path: object) -> None:
    subprocess.run(["bash", "-n"], input=render_on_start(30), text=True, check=True)


def test_embedded_checker_is_the_tested_module_and_compiles() -> None:
    script = render_on_start(45)
    body = re.search(r"<<'(LABKIT_\w+_EOF)'\n(.*)\1", script, re.S)
    assert body is not None
    compile(body.group(2), "autostop.py", "exec")
    assert "def idle_minutes" in body.group(2)
    assert "--idle-minutes 45" in script


def test_cron_entry_runs_every_five_minutes_as_root() -> None:
    assert re.search(r"^echo \"\*/5 \* \* \* \* root ", render_on_start(60), re.M)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_gpu_user_data_installs_the_smoke_test(tmp_path: object) -> None:
    script = render_gpu_user_data()
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    body = re.search(r"<<'(LABKIT_\w+_EOF)'\n(.*)\1", script, re.S)
    assert body is not None and "def run_frameworks" in body.group(2)
    compile(body.group(2), "gpu_smoke_test.py", "exec")
    assert len(script) <= MAX_SCRIPT_CHARS
