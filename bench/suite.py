"""Test-suite wall time: pytest as CI runs it, in a subprocess (collection and interpreter start included)."""

from __future__ import annotations

import re
import subprocess
import sys

from bench.stats import Figure, Section, timed
from labkit import ROOT


class SuiteFailed(RuntimeError):
    """A benchmark of a failing suite would time the wrong thing."""


def suite_once() -> tuple[float, str]:
    seconds, done = timed(lambda: subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True,
    ))
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0:
        raise SuiteFailed(f"pytest exited {done.returncode}: {summary}")
    return seconds, summary


def bench_suite(runs: int) -> list[Section]:
    results = [suite_once() for _ in range(runs)]
    section = Section("Test suite (pytest subprocess, wall time)")
    section.add(Figure("pytest, whole suite", "s", tuple(seconds for seconds, _ in results)).within(60, "≤ 60 s"))
    summary = results[-1][1]
    section.facts["last summary"] = summary
    if match := re.search(r"(\d+) passed", summary):
        section.facts["tests"] = int(match.group(1))
    return [section]
