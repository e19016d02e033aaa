"""Course files of any class size, generated from the demo course so every benchmark measures the real labs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

from labkit import ROOT
from labkit.config import LabConfig, load_config, to_toml


def students(count: int) -> tuple[str, ...]:
    return tuple(f"s{index:03d}" for index in range(1, count + 1))


def course_file(count: int, directory: Path) -> tuple[LabConfig, Path]:
    """lab.toml with `count` students and an expiry that stays valid (the app checks it against today)."""
    base = load_config(ROOT / "lab.toml", allow_expired=True)
    config = dataclasses.replace(base, students=students(count), expires=dt.date.today() + dt.timedelta(days=30))
    path = directory / f"course-{count}.toml"
    path.write_text(to_toml(config))
    # Round-trip through the validating loader: a benchmark must never measure a course labctl would refuse.
    return load_config(path), path


def cdk_app_env(config_path: Path | None, outdir: Path, *, validation: bool) -> dict[str, str]:
    """The environment the CDK CLI gives `python app.py`: cdk.json's context, an output folder, validation switch."""
    context = dict(json.loads((ROOT / "cdk.json").read_text())["context"])
    if config_path is not None:
        context["labkit:config"] = str(config_path)
    return {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(outdir),
        "CDK_VALIDATION": "true" if validation else "false",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
