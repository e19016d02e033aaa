"""Stops this SageMaker notebook instance after N idle minutes. Runs on the notebook from cron.

It is inlined into the notebook's lifecycle configuration (no download at start), so it is standalone:
stdlib only, with boto3 used when the notebook's Python has it and the AWS CLI otherwise.
Idle means: no kernel busy, and no kernel or terminal activity, since the last activity or instance start.
Before it stops the notebook it copies the notebook's volume to the student's bucket once more (the sync script
the lifecycle configuration installs), so an idle stop loses nothing saved.
On GPU notebook types (ml.g4dn.*, ml.g5.*, ...) a busy GPU is activity too: training started from a terminal
(`nohup python train.py`) shows no kernel or terminal activity for hours, only GPU utilisation.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

JUPYTER = "https://localhost:8443"
METADATA = "/opt/ml/metadata/resource-metadata.json"
START_MARKER = "/var/lib/labkit/started"
SYNC_SCRIPT = "/opt/labkit/sync-notebook.sh"  # boot_scripts.SYNC_SCRIPT; this file must stay standalone
# The final sync gets this long; a stopped notebook keeps its volume, so a sync cut short loses nothing yet.
SYNC_TIMEOUT_SECONDS = 240
# Touched whenever the GPU is found busy: its modification time is the GPU's last activity between checks.
GPU_MARKER = "/var/lib/labkit/gpu-busy"
GPU_BUSY_PERCENT = 5
NVIDIA_SMI = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def last_activity(sessions: Iterable[dict[str, Any]], terminals: Iterable[dict[str, Any]]) -> dt.datetime | None:
    """Latest activity of any kernel or terminal; None when nothing was ever opened."""
    stamps = [parse_time(s["kernel"]["last_activity"]) for s in sessions if s.get("kernel", {}).get("last_activity")]
    stamps += [parse_time(t["last_activity"]) for t in terminals if t.get("last_activity")]
    return max(stamps, default=None)


def idle_minutes(
    sessions: list[dict[str, Any]], terminals: list[dict[str, Any]], started: dt.datetime, now: dt.datetime
) -> float:
    """Minutes the notebook has been idle; 0 while any kernel is busy."""
    if any(s.get("kernel", {}).get("execution_state") == "busy" for s in sessions):
        return 0.0
    since = max(filter(None, [last_activity(sessions, terminals), started]))
    return max(0.0, (now - since).total_seconds() / 60)


def gpu_utilization(output: str) -> list[float]:
    """Per-GPU utilisation in percent from `nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits`
    (one line per GPU and sample); lines nvidia-smi fills with `[N/A]` or an error are skipped."""
    values = []
    for line in output.splitlines():
        try:
            values.append(float(line.strip().rstrip("%").strip()))
        except ValueError:
            continue
    return values


def gpu_busy(output: str, percent: float = GPU_BUSY_PERCENT) -> bool:
    """Whether any GPU in any sample was at or above `percent`."""
    return any(value >= percent for value in gpu_utilization(output))


def sample_gpus(run_command: Callable[..., Any] = subprocess.run, *, samples: int = 5, interval: float = 1.0,
                sleep: Callable[[float], None] | None = None) -> str | None:
    """A few nvidia-smi readings a second apart (utilisation is a short average, and a training loop between
    batches can read 0); None when the notebook has no GPU (no nvidia-smi)."""
    import time

    pause = time.sleep if sleep is None else sleep
    readings = []
    for index in range(samples):
        try:
            done = run_command(NVIDIA_SMI, capture_output=True, text=True, timeout=20, check=False)
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return None if index == 0 else "\n".join(readings)
        readings.append(str(done.stdout))
        if index + 1 < samples:
            pause(interval)
    return "\n".join(readings)


def last_gpu_activity(output: str | None, now: dt.datetime, percent: float = GPU_BUSY_PERCENT,
                      marker: str = GPU_MARKER) -> dt.datetime | None:
    """Record a busy GPU (touch the marker) and return when it was last busy, None if never."""
    if output is not None and gpu_busy(output, percent):
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker, "a", encoding="utf-8"):
            pass
        os.utime(marker, (now.timestamp(), now.timestamp()))
    if not os.path.exists(marker):
        return None
    return dt.datetime.fromtimestamp(os.path.getmtime(marker), dt.timezone.utc)


def fetch(path: str) -> list[dict[str, Any]]:
    # Jupyter on the instance serves a self-signed certificate on localhost only.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(f"{JUPYTER}{path}", context=context, timeout=10) as response:
        return json.load(response)  # type: ignore[no-any-return]


def notebook_name(metadata_path: str = METADATA) -> str:
    with open(metadata_path, encoding="utf-8") as handle:
        return str(json.load(handle)["ResourceName"])


def stop_notebook(name: str, client: Any = None) -> None:
    if client is None:
        try:
            import boto3

            client = boto3.client("sagemaker")
        except ImportError:
            subprocess.run(["aws", "sagemaker", "stop-notebook-instance", "--notebook-instance-name", name], check=True)
            return
    client.stop_notebook_instance(NotebookInstanceName=name)


def sync_volume(script: str = SYNC_SCRIPT, timeout: float = SYNC_TIMEOUT_SECONDS) -> bool:
    """Copy the notebook's volume to the bucket now; whether it succeeded (the script logs why not)."""
    if not os.path.exists(script):
        print(f"no sync script at {script}", flush=True)
        return False
    try:
        return subprocess.run(["/bin/bash", script], timeout=timeout, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        print(f"final sync still running after {timeout:.0f} s; stopping anyway (the volume is kept)", flush=True)
        return False


def run(
    limit: float,
    *,
    get: Callable[[str], list[dict[str, Any]]] = fetch,
    started: dt.datetime,
    now: dt.datetime,
    stop: Callable[[], None],
    sync: Callable[[], bool] = lambda: True,
) -> bool:
    """Stop the notebook if it has been idle for `limit` minutes, after a last sync; return whether it did."""
    idle = idle_minutes(get("/api/sessions"), get("/api/terminals"), started, now)
    print(f"{now.isoformat()} idle {idle:.0f} of {limit:.0f} minutes", flush=True)
    if idle < limit:
        return False
    synced = sync()
    print(f"final sync before the stop: {'done' if synced else 'failed'}", flush=True)
    stop()
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle-minutes", type=float, required=True)
    parser.add_argument("--gpu-busy-percent", type=float, default=GPU_BUSY_PERCENT)
    args = parser.parse_args(argv)
    started = dt.datetime.fromtimestamp(os.path.getmtime(START_MARKER), dt.timezone.utc)
    now = dt.datetime.now(dt.timezone.utc)
    # A busy GPU counts as activity: idle time runs from the later of the start and the GPU's last busy check.
    started = max(filter(None, [started, last_gpu_activity(sample_gpus(), now, args.gpu_busy_percent)]))
    name = notebook_name()
    stopped = run(args.idle_minutes, started=started, now=now, stop=lambda: stop_notebook(name), sync=sync_volume)
    if stopped:
        print(f"stopping idle notebook {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
