"""GPU smoke test for a lab instance: is the driver up, and does the installed framework compute on the GPU?

Runs on the instance (labkit copies it to /opt/labkit/gpu_smoke_test.py at boot): stdlib only, and each
framework is optional. Tries PyTorch, then TensorFlow, then MXNet (the course's demo framework), and reports
each one that is installed. Exit code 0 only if nvidia-smi sees a GPU and at least one framework ran on it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any


def nvidia_smi() -> list[dict[str, str]]:
    """The GPUs the driver sees; an empty list when there is no driver or no GPU."""
    if shutil.which("nvidia-smi") is None:
        return []
    fields = "name,memory.total,driver_version,compute_cap"
    result = subprocess.run(
        ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return []
    return [dict(zip(fields.split(","), (c.strip() for c in line.split(",")))) for line in result.stdout.splitlines()
            if line.strip()]


def _torch(module: Any) -> str:
    if not module.cuda.is_available():
        raise RuntimeError("torch.cuda.is_available() is False")
    a = module.randn(512, 512, device="cuda")
    b = a @ a.T
    module.cuda.synchronize()
    # A matrix times its transpose is symmetric: a cheap check that the GPU computed something real.
    if not module.allclose(b, b.T, atol=1e-3):
        raise RuntimeError("GPU matmul returned a wrong result")
    return f"torch {module.__version__} on {module.cuda.get_device_name(0)}"


def _tensorflow(module: Any) -> str:
    gpus = module.config.list_physical_devices("GPU")
    if not gpus:
        raise RuntimeError("TensorFlow sees no GPU")
    with module.device("/GPU:0"):
        total = float(module.reduce_sum(module.ones((256, 256))).numpy())
    if total != 256 * 256:
        raise RuntimeError(f"GPU reduce_sum returned {total}")
    return f"tensorflow {module.__version__} on {gpus[0].name}"


def _mxnet(module: Any) -> str:
    # The course's MXNet demo: an NDArray on the GPU, doubled.
    array = module.nd.ones((2, 3), ctx=module.gpu()) * 2
    if array.asnumpy().sum() != 12:
        raise RuntimeError("MXNet GPU NDArray returned a wrong result")
    return f"mxnet {module.__version__} on gpu(0)"


FRAMEWORKS: dict[str, Callable[[Any], str]] = {"torch": _torch, "tensorflow": _tensorflow, "mxnet": _mxnet}


def run_frameworks(importer: Callable[[str], Any] = importlib.import_module) -> dict[str, str]:
    """framework -> 'ok: ...' / 'failed: ...'; frameworks that are not installed are left out."""
    results: dict[str, str] = {}
    for name, check in FRAMEWORKS.items():
        try:
            module = importer(name)
        except ImportError:
            continue
        started = time.perf_counter()
        try:
            detail = check(module)
            results[name] = f"ok: {detail} ({(time.perf_counter() - started) * 1000:.0f} ms)"
        except Exception as exc:  # noqa: BLE001 - a broken framework is a test result, not a crash
            results[name] = f"failed: {exc}"
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args(argv)
    gpus = nvidia_smi()
    frameworks = run_frameworks()
    passed = bool(gpus) and any(v.startswith("ok") for v in frameworks.values())
    if args.json:
        print(json.dumps({"gpus": gpus, "frameworks": frameworks, "passed": passed}))
    else:
        for gpu in gpus or [{"name": "no GPU visible to nvidia-smi"}]:
            print("GPU:", ", ".join(gpu.values()))
        for name, outcome in (frameworks or {"frameworks": "none of torch, tensorflow, mxnet installed"}).items():
            print(f"{name}: {outcome}")
        print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
