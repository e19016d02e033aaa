"""scripts/cdk: the pinned CDK CLI started from a V8 code cache. The cache must only ever be a speed-up: the same
answers as node_modules/.bin/cdk, written once and then used as is, and a damaged one replaced, never fatal."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT

LAUNCHER = ROOT / "scripts" / "cdk"


def cdk(cache: Path | str, *words: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LABKIT_CDK_CODE_CACHE": str(cache), "CDK_DISABLE_VERSION_CHECK": "1",
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    return subprocess.run([str(LAUNCHER), *words], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def node_has_its_own_cache() -> bool:
    probe = subprocess.run(["node", "-p", "typeof require('module').enableCompileCache"], capture_output=True,
                           text=True, timeout=30)
    return probe.stdout.strip() == "function"


def test_the_launcher_answers_as_the_cli_does_and_writes_its_cache_once(tmp_path: Path) -> None:
    plain = subprocess.run([str(ROOT / "node_modules" / ".bin" / "cdk"), "--version"], capture_output=True,
                           text=True, timeout=120)
    first = cdk(tmp_path, "--version")
    assert first.returncode == 0 and first.stdout == plain.stdout and plain.stdout.startswith("2.")
    if node_has_its_own_cache():  # Node 22+: module.enableCompileCache keeps its own files in the folder
        assert any(tmp_path.iterdir())
        return
    [written] = list(tmp_path.iterdir())
    assert written.name.startswith(f"{subprocess.check_output(['node', '--version'], text=True).strip()}-")
    assert written.suffix == ".v8" and written.stat().st_size > 1_000_000
    stamp = written.stat().st_mtime_ns
    again = cdk(tmp_path, "--version")
    # Accepted by V8: a rejected cache would be rewritten at exit.
    assert again.returncode == 0 and again.stdout == plain.stdout and written.stat().st_mtime_ns == stamp


def test_a_damaged_cache_is_replaced_and_the_command_still_runs(tmp_path: Path) -> None:
    if node_has_its_own_cache():
        return
    assert cdk(tmp_path, "--version").returncode == 0
    [written] = list(tmp_path.iterdir())
    written.write_bytes(b"not a V8 code cache")
    done = cdk(tmp_path, "--version")
    assert done.returncode == 0 and done.stdout.startswith("2.")
    assert written.stat().st_size > 1_000_000 and [p.name for p in tmp_path.iterdir()] == [written.name]


def test_an_unwritable_cache_or_none_at_all_changes_nothing(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    for cache in (blocked / "cache", "off"):
        done = cdk(cache, "--version")
        assert done.returncode == 0 and done.stdout.startswith("2.") and done.stderr == ""
