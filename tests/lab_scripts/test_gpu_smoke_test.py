"""The on-instance GPU smoke test, without a GPU: frameworks are faked; the real run is on a GPU machine."""

from __future__ import annotations

import types
from typing import Any

import pytest

from lab_scripts import gpu_smoke_test as smoke


def fake_mxnet(total: float) -> Any:
    array = types.SimpleNamespace(asnumpy=lambda: types.SimpleNamespace(sum=lambda: total))

    class NDArray:
        def __mul__(self, other: int) -> Any:
            return array

    return types.SimpleNamespace(__version__="1.9.1", gpu=lambda: "gpu(0)",
                                 nd=types.SimpleNamespace(ones=lambda shape, ctx: NDArray()))


def importer(modules: dict[str, Any]) -> Any:
    def load(name: str) -> Any:
        if name not in modules:
            raise ImportError(name)
        return modules[name]
    return load


def test_only_installed_frameworks_are_reported() -> None:
    assert smoke.run_frameworks(importer({})) == {}
    result = smoke.run_frameworks(importer({"mxnet": fake_mxnet(12)}))
    assert list(result) == ["mxnet"] and result["mxnet"].startswith("ok: mxnet 1.9.1 on gpu(0)")


def test_wrong_gpu_result_is_a_failure_not_a_crash() -> None:
    result = smoke.run_frameworks(importer({"mxnet": fake_mxnet(7)}))
    assert result == {"mxnet": "failed: MXNet GPU NDArray returned a wrong result"}


def test_torch_without_cuda_fails_cleanly() -> None:
    torch = types.SimpleNamespace(__version__="2.7", cuda=types.SimpleNamespace(is_available=lambda: False))
    assert smoke.run_frameworks(importer({"torch": torch})) == {"torch": "failed: torch.cuda.is_available() is False"}


def test_no_gpu_means_fail(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(smoke.shutil, "which", lambda name: None)
    monkeypatch.setattr(smoke, "run_frameworks", lambda: {})
    assert smoke.main([]) == 1
    out = capsys.readouterr().out
    assert "no GPU visible to nvidia-smi" in out and out.strip().endswith("FAIL")
