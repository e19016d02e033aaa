"""Course files of any class size, generated from the demo course so every benchmark measures the real labs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

from labkit import ROOT
from course.config import ACCOUNT_PER_STUDENT, LabConfig, load_config, to_toml

# Any OU id will do for synthesis: account-per-student mode targets the OU, it never lists its accounts.
BENCH_OU = "ou-bench-0123456789"


def students(count: int) -> tuple[str, ...]:
    return tuple(f"s{index:03d}" for index in range(1, count + 1))


def course_file(count: int, directory: Path, *, per_account: bool = False) -> tuple[LabConfig, Path]:
    """lab.toml with `count` students and an expiry that stays valid (the app checks it against today).

    The students come from a roster written beside it (account-per-student mode takes them only from one), each
    with an account of their own for that mode."""
    base = load_config(ROOT / "lab.toml", allow_expired=True)
    mode = "account" if per_account else "single"
    roster = directory / f"roster-{mode}-{count}.csv"
    roster.write_text("id,name,email,account\n" + "".join(
        f"{student},Student {index},{student}@example.edu,{200000000000 + index:012d}\n"
        for index, student in enumerate(students(count), start=1)))
    classroom = dataclasses.replace(base.classroom, roster=roster)
    if per_account:
        classroom = dataclasses.replace(classroom, mode=ACCOUNT_PER_STUDENT, organizational_unit=BENCH_OU)
    config = dataclasses.replace(base, students=students(count), classroom=classroom,
                                 expires=dt.date.today() + dt.timedelta(days=30))
    path = directory / f"course-{mode}-{count}.toml"
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
