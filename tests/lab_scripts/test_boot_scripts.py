"""The rendered on-start script: valid bash, valid embedded Python, within SageMaker's size limit."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from lab_scripts import boot_scripts
from lab_scripts.boot_scripts import MAX_SCRIPT_CHARS, render_gpu_user_data

BUCKET = "ml101-alice-123456789012-us-east-1"


def render_on_start(idle_minutes: int, **kwargs: Any) -> str:
    return boot_scripts.render_on_start(idle_minutes, bucket=BUCKET, region="us-east-1", **kwargs)


def test_script_fits_sagemaker_limit() -> None:
    assert len(render_on_start(60)) <= MAX_SCRIPT_CHARS


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_script_is_valid_bash(tmp_path: object) -> None:
    subprocess.run(["bash", "-n"], input=render_on_start(30), text=True, check=True)


def test_embedded_checker_is_the_tested_module_and_compiles() -> None:
    script = render_on_start(45)
    body = re.search(r"<<'(LABKIT_NOTEBOOK_AUTOSTOP_PY_EOF)'\n(.*?)\1", script, re.S)
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


def installed(script: str, marker: str) -> str:
    body = re.search(rf"<<'({marker})'\n(.*?)\1", script, re.S)
    assert body is not None, marker
    return body.group(2)


def test_script_with_both_programs_stays_well_inside_the_limits() -> None:
    script = render_on_start(1440, sync_minutes=1)
    # SageMaker's limit is 16,384 characters; keep room for the programs to grow.
    assert len(script) <= MAX_SCRIPT_CHARS * 3 // 4, len(script)
    # Nothing on the instance is downloaded; the only network use is the AWS CLI talking to S3 (and Jupyter on localhost).
    assert not re.search(r"\b(curl|wget|pip install|yum|conda install)\b|https?://(?!localhost)", script)


def test_sync_is_installed_scheduled_and_started_in_the_background() -> None:
    script = render_on_start(60, sync_minutes=5)
    assert installed(script, "LABKIT_NOTEBOOK_SYNC_SH_EOF") == (boot_scripts._HERE / "notebook_sync.sh").read_text()
    assert re.search(r'^echo "\*/5 \* \* \* \* root /bin/bash /opt/labkit/sync-notebook.sh ', script, re.M)
    # SageMaker fails a notebook whose on-start script runs 5 minutes: the first sync must not be waited for.
    last = script.rstrip().splitlines()[-1]
    assert last.startswith("nohup ") and last.endswith(" < /dev/null &")
    assert f"BUCKET={BUCKET}\nPREFIX=notebook/\nREGION=us-east-1\n" in script
    assert "SOURCE=/home/ec2-user/SageMaker\n" in script
    assert re.search(r"^echo \"\*/2 \* \* \* \* root /bin/bash", render_on_start(60, sync_minutes=2), re.M)


def test_sync_period_is_bounded() -> None:
    with pytest.raises(ValueError, match="sync_minutes 0"):
        render_on_start(60, sync_minutes=0)


def fake_aws(tmp_path: Path, exit_code: int = 0) -> tuple[Path, Path]:
    """An `aws` that records its arguments, and a sync.env that points the sync script at it."""
    calls = tmp_path / "calls"
    aws = tmp_path / "aws"
    aws.write_text(f"#!/bin/bash\nprintf '%s\\n' \"$@\" > {calls}\nexit {exit_code}\n")
    aws.chmod(0o755)
    env = tmp_path / "sync.env"
    env.write_text(f"AWS={aws}\nSOURCE=/home/ec2-user/SageMaker\nBUCKET={BUCKET}\nPREFIX=notebook/\n"
                   "REGION=us-east-1\n")
    return env, calls


@pytest.mark.skipif(shutil.which("flock") is None, reason="flock not installed")
def test_sync_script_copies_the_volume_to_the_notebook_prefix_and_never_deletes(tmp_path: Path) -> None:
    env, calls = fake_aws(tmp_path)
    run = subprocess.run(["bash", str(boot_scripts._HERE / "notebook_sync.sh")], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "LABKIT_SYNC_ENV": str(env),
                              "LABKIT_SYNC_LOCK": str(tmp_path / "lock")})
    assert run.returncode == 0, run.stdout + run.stderr
    args = calls.read_text().splitlines()
    assert args[:4] == ["s3", "sync", "/home/ec2-user/SageMaker", f"s3://{BUCKET}/notebook/"]
    assert "--delete" not in args and "--no-follow-symlinks" in args
    excluded = [args[i + 1] for i, arg in enumerate(args) if arg == "--exclude"]
    assert excluded == ["*.ipynb_checkpoints/*", "lost+found/*"]
    assert f"sync to s3://{BUCKET}/notebook/: exit 0" in run.stdout


@pytest.mark.skipif(shutil.which("flock") is None, reason="flock not installed")
def test_sync_script_reports_a_failed_copy(tmp_path: Path) -> None:
    env, _ = fake_aws(tmp_path, exit_code=2)
    run = subprocess.run(["bash", str(boot_scripts._HERE / "notebook_sync.sh")], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "LABKIT_SYNC_ENV": str(env),
                              "LABKIT_SYNC_LOCK": str(tmp_path / "lock")})
    assert run.returncode == 2 and "exit 2" in run.stdout


def test_gpu_user_data_configures_the_metrics_the_alarm_and_guard_read() -> None:
    """The agent's names are the guard's: namespace, `<plugin>_<measurement>` metric names, the StatsD gauge."""
    from lab_scripts.boot_scripts import AGENT_CONFIG, TERMINAL_INPUT
    from lab_scripts.guard_fn import handler

    metrics = AGENT_CONFIG["metrics"]
    assert metrics["namespace"] == handler.AGENT_NAMESPACE
    assert metrics["aggregation_dimensions"] == [["InstanceId"]]  # the alarm names InstanceId alone
    collected = metrics["metrics_collected"]
    assert f"cpu_{collected['cpu']['measurement'][0]}" == handler.CPU_METRIC
    assert f"nvidia_smi_{collected['nvidia_gpu']['measurement'][0]}" == handler.GPU_METRIC
    assert f"{handler.INPUT_METRIC}:" in TERMINAL_INPUT
    assert collected["statsd"]["service_address"] == "127.0.0.1:8125" and "/dev/udp/127.0.0.1/8125" in TERMINAL_INPUT
    script = render_gpu_user_data()
    agent = json.loads(script.split("<<'LABKIT_AGENT_EOF'\n")[1].split("\nLABKIT_AGENT_EOF")[0])
    assert agent == json.loads(json.dumps(AGENT_CONFIG))
    # Installed only when missing, from AWS's own sources; a failure leaves the machine running, not the boot broken.
    assert "if [ ! -x /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl ]" in script
    assert "dnf install -y amazon-cloudwatch-agent" in script and ".s3.$R.amazonaws.com/ubuntu/" in script
    assert "labkit-terminal-input.timer" in script


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_terminal_input_is_one_only_after_recent_input(tmp_path: Path) -> None:
    """The sampler on fake terminals: an old access time reads 0, a fresh one 1 (sent to a fake StatsD file)."""
    pts = tmp_path / "pts"
    pts.mkdir()
    tty = pts / "0"
    tty.write_text("")
    sink = tmp_path / "statsd"
    script = terminal_sampler(pts, sink)

    def sample() -> str:
        subprocess.run(["bash", "-c", script], check=True)
        return sink.read_text().strip()

    os.utime(tty, (time.time() - 600, time.time() - 600))
    assert sample() == "labkit_terminal_input:0|g"
    os.utime(tty, (time.time(), time.time()))
    assert sample() == "labkit_terminal_input:1|g"


def terminal_sampler(pts: Path, sink: Path) -> str:
    """The sampler with its terminals and its StatsD socket moved into a test folder."""
    from lab_scripts.boot_scripts import TERMINAL_INPUT

    return TERMINAL_INPUT.replace("/dev/pts/", f"{pts}/").replace("/dev/udp/127.0.0.1/8125", str(sink))
