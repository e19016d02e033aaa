"""The on-notebook idle checker: idle arithmetic, and the stop call it makes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from lab_scripts import notebook_autostop as autostop
from tests.lab_scripts.conftest import create_notebook

START = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)


def kernel(minutes_after_start: int, state: str = "idle") -> dict[str, Any]:
    stamp = (START + dt.timedelta(minutes=minutes_after_start)).isoformat().replace("+00:00", "Z")
    return {"kernel": {"execution_state": state, "last_activity": stamp}}


def at(minutes: int) -> dt.datetime:
    return START + dt.timedelta(minutes=minutes)


def test_idle_counts_from_start_when_nothing_was_opened() -> None:
    assert autostop.idle_minutes([], [], START, at(45)) == 45


def test_idle_counts_from_latest_kernel_or_terminal_activity() -> None:
    terminals = [{"last_activity": (at(30)).isoformat()}]
    assert autostop.idle_minutes([kernel(10), kernel(20)], terminals, START, at(50)) == 20


def test_busy_kernel_is_never_idle() -> None:
    assert autostop.idle_minutes([kernel(0, "busy")], [], START, at(600)) == 0


def test_run_stops_only_past_the_limit() -> None:
    calls: list[str] = []
    replies = {"/api/sessions": [kernel(0)], "/api/terminals": []}
    assert not autostop.run(60, get=replies.__getitem__, started=START, now=at(59), stop=lambda: calls.append("x"))
    assert autostop.run(60, get=replies.__getitem__, started=START, now=at(61), stop=lambda: calls.append("x"))
    assert calls == ["x"]


def test_the_volume_is_synced_right_before_an_idle_stop() -> None:
    calls: list[str] = []
    replies = {"/api/sessions": [kernel(0)], "/api/terminals": []}
    autostop.run(60, get=replies.__getitem__, started=START, now=at(59), stop=lambda: calls.append("stop"),
                 sync=lambda: calls.append("sync") is None)
    assert calls == []
    autostop.run(60, get=replies.__getitem__, started=START, now=at(61), stop=lambda: calls.append("stop"),
                 sync=lambda: calls.append("sync") is None)
    assert calls == ["sync", "stop"]


def test_a_failed_sync_still_stops_the_notebook(tmp_path: Path) -> None:
    script = tmp_path / "sync.sh"
    script.write_text("exit 3\n")
    assert autostop.sync_volume(str(script)) is False
    assert autostop.sync_volume(str(tmp_path / "missing.sh")) is False
    script.write_text("sleep 5\n")
    assert autostop.sync_volume(str(script), timeout=0.2) is False
    script.write_text("exit 0\n")
    assert autostop.sync_volume(str(script)) is True


def test_the_standalone_script_names_the_installed_sync() -> None:
    from lab_scripts import boot_scripts

    assert autostop.SYNC_SCRIPT == boot_scripts.SYNC_SCRIPT


def test_stop_notebook_calls_sagemaker(aws: Any, sagemaker: Any) -> None:
    name = create_notebook(aws)
    autostop.stop_notebook(name, client=sagemaker)
    assert sagemaker.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"] == "Stopped"


def test_notebook_name_comes_from_instance_metadata(tmp_path: Path) -> None:
    metadata = tmp_path / "resource-metadata.json"
    metadata.write_text(json.dumps({"ResourceName": "ml101-alice", "ResourceArn": "arn:..."}))
    assert autostop.notebook_name(str(metadata)) == "ml101-alice"


# -- GPU notebook types: a busy GPU is activity ---------------------------------------------------------------
NVIDIA_BUSY = "92\n"  # nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits, one GPU
NVIDIA_IDLE = "0\n"
NVIDIA_TWO_GPUS = "0\n[N/A]\n37 %\n"


def test_nvidia_smi_output_is_read_per_gpu() -> None:
    assert autostop.gpu_utilization(NVIDIA_TWO_GPUS) == [0.0, 37.0]
    assert autostop.gpu_busy(NVIDIA_BUSY) and not autostop.gpu_busy(NVIDIA_IDLE)
    assert autostop.gpu_busy("4\n", percent=5) is False and autostop.gpu_busy("5\n", percent=5) is True
    assert autostop.gpu_busy("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver") is False


def test_a_cpu_notebook_has_no_gpu_reading() -> None:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise FileNotFoundError("nvidia-smi")

    assert autostop.sample_gpus(missing, sleep=lambda s: None) is None


def test_samples_are_joined_so_one_busy_reading_counts() -> None:
    readings = iter(["0\n", "0\n", "88\n"])

    class Done:
        def __init__(self) -> None:
            self.stdout = next(readings)

    output = autostop.sample_gpus(lambda *a, **k: Done(), samples=3, sleep=lambda s: None)
    assert output is not None and autostop.gpu_busy(output)


def test_silent_gpu_training_keeps_the_notebook_and_an_idle_gpu_lets_it_stop(tmp_path: Path) -> None:
    """Training started from a terminal: no kernel, no terminal activity for hours, the GPU at 92 %."""
    marker = str(tmp_path / "gpu-busy")
    stops: list[str] = []
    replies = {"/api/sessions": [kernel(0)], "/api/terminals": [{"last_activity": at(5).isoformat()}]}
    for minute in range(10, 240, 5):  # cron every 5 minutes, GPU busy throughout
        started = max(filter(None, [START, autostop.last_gpu_activity(NVIDIA_BUSY, at(minute), marker=marker)]))
        autostop.run(60, get=replies.__getitem__, started=started, now=at(minute), stop=lambda: stops.append("x"))
    assert stops == []
    # Training ends at 240: the GPU is idle; the notebook stops 60 minutes after its last busy reading.
    for minute in range(240, 320, 5):
        started = max(filter(None, [START, autostop.last_gpu_activity(NVIDIA_IDLE, at(minute), marker=marker)]))
        if autostop.run(60, get=replies.__getitem__, started=started, now=at(minute), stop=lambda: stops.append("x")):
            assert minute == 295  # last busy check at 235, + 60
            break
    assert stops == ["x"]


def test_an_idle_gpu_notebook_stops_like_any_other(tmp_path: Path) -> None:
    marker = str(tmp_path / "gpu-busy")
    assert autostop.last_gpu_activity(NVIDIA_IDLE, at(70), marker=marker) is None
    assert autostop.run(60, get={"/api/sessions": [], "/api/terminals": []}.__getitem__, started=START, now=at(70),
                        stop=lambda: None)
