"""Synthesis: the whole app against the floor of any CDK app, where the time goes, class scale in both
classroom modes.

Every synthesis runs in a fresh process, as the CDK CLI runs `python app.py`: most of the cost is starting
Python, importing aws_cdk and starting the jsii kernel (Node), which an in-process loop would hide.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.course import cdk_app_env, course_file
from bench.stats import Figure, Section, ratio, slope, timed
from labkit import ROOT
from course.config import LABS, MAX_STUDENTS

# The floor: what any CDK app pays before it builds anything.
FLOOR = "import aws_cdk; aws_cdk.App().synth()"
# Up to the largest class one course file accepts (CloudFormation's 500 resources per stack).
CLASS_SIZES = (1, 10, 30, MAX_STUDENTS)
QUICK_CLASS_SIZES = (1, 30)
# Account-per-student mode: larger than one account allows, since the class size should not matter there.
STACKSET_SIZES = (30, 300)
STACKSET_LABEL = "account-per-student mode (one stack set for the OU)"


@dataclass(frozen=True)
class Run:
    """One synthesis process: its argv after the interpreter, and the course file it reads (if any)."""

    label: str
    argv: tuple[str, ...]
    course: Path | None = None
    validation: bool = False


class SynthFailed(RuntimeError):
    """A synthesis exited non-zero; the message is its last line (e.g. CloudFormation's 500-resource limit)."""


def synthesize(run: Run) -> tuple[float, str]:
    """Wall seconds of one synthesis process, and what it printed."""
    with tempfile.TemporaryDirectory(prefix="labkit-bench-synth-") as outdir:
        env = cdk_app_env(run.course, Path(outdir), validation=run.validation)
        seconds, done = timed(lambda: subprocess.run(
            [sys.executable, *run.argv], cwd=ROOT, env=env, capture_output=True, text=True))
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise SynthFailed(lines[-1] if lines else f"exit {done.returncode}")
    return seconds, done.stdout


def _measure(variants: dict[str, Run], runs: int) -> dict[str, Figure]:
    """Interleaved: run i of every variant before run i+1 of any, so a load spike spreads over all of them.

    A variant that fails once is not retried (synthesis is deterministic); its figure carries the reason.
    """
    values: dict[str, list[float]] = {key: [] for key in variants}
    failed: dict[str, str] = {}
    for _ in range(runs):
        for key, run in variants.items():
            if key in failed:
                continue
            try:
                values[key].append(synthesize(run)[0])
            except SynthFailed as exc:
                failed[key] = str(exc)
    return {
        key: Figure(run.label, "s", tuple(values[key]), note=f"fails: {failed[key]}" if key in failed else "")
        for key, run in variants.items()
    }


def _word(validation: bool) -> str:
    return "with" if validation else "without"


def stackset_run(size: int, workdir: Path) -> Run:
    """app.py on an account-per-student course of `size` students, CDK validation off (as the other sizes)."""
    return Run(f"{STACKSET_LABEL}, {size} students", ("app.py",), course_file(size, workdir, per_account=True)[1])


def _variants(sizes: tuple[int, ...], courses: dict[int, Path], quick: bool, workdir: Path) -> dict[str, Run]:
    variants: dict[str, Run] = {}
    for validation in (False, True):
        word = _word(validation)
        variants[f"floor-{validation}"] = Run(f"floor: empty App, {word} validation", ("-c", FLOOR),
                                              validation=validation)
        variants[f"app-1-{validation}"] = Run(f"whole app (every lab, 1 student), {word} validation", ("app.py",),
                                              courses[1], validation)
        for size in sizes[1:]:
            if validation and quick:
                continue
            variants[f"app-{size}-{validation}"] = Run(f"{size} students, {word} validation", ("app.py",),
                                                       courses[size], validation)
    for size in STACKSET_SIZES:
        variants[f"stackset-{size}"] = stackset_run(size, workdir)
    return variants


def bench_synth(runs: int, quick: bool, workdir: Path) -> list[Section]:
    sizes = QUICK_CLASS_SIZES if quick else CLASS_SIZES
    courses = {size: course_file(size, workdir)[1] for size in sizes}
    figures = _measure(_variants(sizes, courses, quick, workdir), runs)

    whole = Section("Synthesis: whole app vs floor (fresh process each, as `cdk synth` runs it)")
    for validation in (False, True):
        floor, full = figures[f"floor-{validation}"], figures[f"app-1-{validation}"]
        whole.add(floor)
        whole.add(full)
        whole.add(ratio(full, floor, f"ratio whole app / floor, {_word(validation)} validation").within(1.5, "≤ 1.5×"))

    scale = Section(f"Synthesis: class scale, single-account mode ({', '.join(LABS)})")
    for validation in (False, True):
        points = {size: figures[key] for size in sizes if (key := f"app-{size}-{validation}") in figures}
        if len(points) < 2:
            continue
        for size, figure in points.items():
            if size > 1:
                scale.add(figure)
        per_student = slope(points, f"marginal cost per student, {_word(validation)} validation")
        scale.add(per_student.within(50, "≤ 50 ms"))

    stacksets = Section("Synthesis: class scale, account-per-student mode")
    small, large = (figures[f"stackset-{size}"] for size in STACKSET_SIZES)
    stacksets.add(small)
    stacksets.add(large)
    flat = ratio(large, small, f"{STACKSET_LABEL}: {STACKSET_SIZES[1]} / {STACKSET_SIZES[0]} students")
    stacksets.add(flat.within(1.10, "≤ 1.10× (flat within 10 %)"))
    stacksets.facts["what runs"] = (
        "app.py on a course whose roster lists the students (python -m bench.stackset_synth runs one by hand): "
        "LabClassroom synthesizes the student-account template once and a stack set targets the OU; "
        "LabRekognition and LabGuard as in single-account mode; CDK validation off"
    )
    return [whole, bench_phases(runs, courses[1]), scale, stacksets]


def bench_phases(runs: int, course: Path) -> Section:
    """The whole app (1 student, no validation) cut into app.py's steps, plus interpreter start and exit."""
    run = Run("phases", ("-m", "bench.synth_phases"), course)
    samples: list[dict[str, float]] = []
    requests: dict[str, Any] = {}
    for _ in range(runs):
        started = time.time()
        wall, out = synthesize(run)
        report = json.loads(out.strip().splitlines()[-1])
        samples.append({
            "interpreter start": report["started"] - started,
            **report["seconds"],
            "exit (jsii kernel stop, interpreter)": started + wall - report["ended"],
            "whole process": wall,
        })
        requests = report["jsii_requests"]
    section = Section("Synthesis: where the whole app's time goes (1 student, without validation)")
    for name in samples[0]:
        section.add(Figure(name, "s", tuple(sample[name] for sample in samples)))
    section.facts["jsii requests per phase"] = requests
    return section
