"""The test suite's synthesis cache: a key that changes with every input of a synthesis and with nothing else, and
an app.py that copies a stored assembly instead of synthesizing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course.config import to_toml
from labkit import synth_cache
from tests.conftest import ROOT, make_config

CONTEXT = {"@aws-cdk/core:explicitStackTags": True, "labkit:config": "/a/course.toml",
           "aws:cdk:bundling-stacks": ["**"]}
DAY = dt.date(2026, 12, 1)


def environ(**changes: object) -> dict[str, str]:
    context = {**CONTEXT, **changes}
    return {"CDK_CONTEXT_JSON": json.dumps(context), "CDK_VALIDATION": "false", "CDK_DEFAULT_REGION": "us-east-1"}


def test_the_key_ignores_the_config_path_the_bundling_selection_and_leave_to_synthesize_an_expired_course() -> None:
    config = make_config()
    first = synth_cache.key(config, environ(), today=DAY)
    assert synth_cache.key(config, environ(**{"labkit:config": "/b/other.toml"}), today=DAY) == first
    assert synth_cache.key(config, environ(**{"aws:cdk:bundling-stacks": ["LabGuard"]}), today=DAY) == first
    assert synth_cache.key(config, environ(**{"labkit:allow-expired": "true"}), today=DAY) == first


def test_the_key_changes_with_the_course_the_context_the_environment_and_the_date() -> None:
    config = make_config()
    first = synth_cache.key(config, environ(), today=DAY)
    late = dataclasses.replace(config, students=(*config.students, "dave"))
    assert synth_cache.key(late, environ(), today=DAY) != first
    assert synth_cache.key(config, environ(**{"@aws-cdk/core:explicitStackTags": False}), today=DAY) != first
    assert synth_cache.key(config, {**environ(), "CDK_VALIDATION": "true"}, today=DAY) != first
    assert synth_cache.key(config, environ(), today=DAY + dt.timedelta(days=1)) != first


def test_the_key_changes_with_any_source_file(tmp_path: Path) -> None:
    for name in synth_cache.SOURCES:
        target = tmp_path / name if name.endswith(".py") else tmp_path / name / "module.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x = 1\n")
    config = make_config()
    first = synth_cache.key(config, environ(), today=DAY, root=tmp_path)
    (tmp_path / "infra" / "module.py").write_text("x = 2\n")
    assert synth_cache.key(config, environ(), today=DAY, root=tmp_path) != first


def test_store_then_restore_copies_the_whole_assembly_and_a_missing_entry_is_a_miss(tmp_path: Path) -> None:
    assembly = tmp_path / "cdk.out"
    (assembly / "asset.abc").mkdir(parents=True)
    (assembly / "manifest.json").write_text("{}")
    (assembly / "asset.abc" / "index.py").write_text("print('hi')\n")
    cache = tmp_path / "cache"
    assert not synth_cache.restore(cache, "k1", tmp_path / "out")
    synth_cache.store(cache, "k1", assembly)
    synth_cache.store(cache, "k1", tmp_path)  # a second store of the same key keeps the first
    assert synth_cache.restore(cache, "k1", tmp_path / "out")
    assert (tmp_path / "out" / "asset.abc" / "index.py").read_text() == "print('hi')\n"
    assert [path.name for path in cache.iterdir()] == ["k1"]  # no staging folder left behind


@pytest.mark.parametrize("stored", [True, False])
def test_app_py_copies_a_stored_assembly_and_synthesizes_without_one(tmp_path: Path, stored: bool) -> None:
    """A hit ends app.py before aws_cdk is imported; a miss would synthesize (here it is stopped at the import)."""
    config = dataclasses.replace(make_config(), expires=dt.date.today() + dt.timedelta(days=30))
    course = tmp_path / "course.toml"
    course.write_text(to_toml(config))
    env = {**os.environ, **environ(**{"labkit:config": str(course)}), "CDK_OUTDIR": str(tmp_path / "out"),
           "LABKIT_SYNTH_CACHE": str(tmp_path / "cache")}
    entry = synth_cache.key(config, env)
    if stored:
        (tmp_path / "cache" / entry).mkdir(parents=True)
        (tmp_path / "cache" / entry / "manifest.json").write_text('{"stored": true}')
    probe = ("import builtins, runpy, sys; real = builtins.__import__\n"
             "def guard(name, *a, **k):\n"
             "    if name == 'aws_cdk': sys.exit(7)\n"
             "    return real(name, *a, **k)\n"
             "builtins.__import__ = guard; sys.argv = ['app.py']; runpy.run_path('app.py', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    if stored:
        assert done.returncode == 0, done.stderr
        assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == {"stored": True}
    else:
        assert done.returncode == 7, done.stderr  # on its way to a real synthesis
        assert not (tmp_path / "out").exists()
