"""Emulator round-trip: `labkit.ops.stacks.deploy` then `destroy` of every lab with the real CDK CLI, in a fresh
embedded emulator per run (moto cannot update stacks, so each run needs a clean one).

Timed apart: starting the emulator and bootstrapping CDK in it (once per emulator, not per deploy), then
deploy (synth + deploy + inventory) and destroy (drain + synth + destroy + VPC fallback + audit). The CDK CLI
runs with the product's defaults, CloudFormation validation included, exactly as `labctl deploy` runs it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.course import course_file
from bench.stats import Figure, Section, timed
from course.config import LABS
from labkit.emulator import Emulator
from labkit.ops.stacks import deploy, ensure_bootstrapped
from labkit.ops.teardown import destroy
from labkit.target import emulator_target

SIZES = (1, 30)
QUICK_SIZES = (1,)


class RoundTripFailed(RuntimeError):
    """The destroy left something behind: the timing of a round-trip that does not clean up means nothing."""


@dataclass(frozen=True)
class RoundTrip:
    start_s: float
    bootstrap_s: float
    deploy_s: float
    destroy_s: float
    resources: int


def round_trip(students: int, workdir: Path) -> RoundTrip:
    config, path = course_file(students, workdir)
    emulator = Emulator(config.region)
    start_s, endpoint = timed(emulator.start)
    try:
        target = emulator_target(endpoint)
        bootstrap_s, _ = timed(lambda: ensure_bootstrapped(target, config, path))
        deploy_s, deployed = timed(lambda: deploy(config, path, target, list(LABS)))
        with tempfile.TemporaryDirectory(prefix="labkit-bench-archive-") as archive:
            destroy_s, result = timed(lambda: destroy(config, path, target, list(LABS), archive_dir=Path(archive)))
    finally:
        emulator.stop()
    if not result.audit.clean:
        raise RoundTripFailed(f"{len(result.audit.leftovers)} resources left, e.g. {result.audit.leftovers[0]}")
    return RoundTrip(start_s, bootstrap_s, deploy_s, destroy_s, sum(len(rows) for rows in deployed.values()))


def bench_round_trip(runs: int, quick: bool, workdir: Path) -> list[Section]:
    sizes = QUICK_SIZES if quick else SIZES
    results: dict[int, list[RoundTrip]] = {size: [] for size in sizes}
    for _ in range(runs):
        for size in sizes:
            results[size].append(round_trip(size, workdir))
    section = Section("Emulator round-trip: labkit.jobs deploy + destroy, every lab, real CDK CLI")
    for size, trips in results.items():
        label = f"{size} student{'s' if size > 1 else ''}"
        section.add(Figure(f"{label}: deploy", "s", tuple(t.deploy_s for t in trips)))
        section.add(Figure(f"{label}: destroy", "s", tuple(t.destroy_s for t in trips)))
        total = Figure(f"{label}: deploy + destroy", "s", tuple(t.deploy_s + t.destroy_s for t in trips))
        section.add(total.within(60, "≤ 60 s") if size == 30 else total)
        section.facts[f"{label}: template resources"] = trips[-1].resources
    every = [trip for trips in results.values() for trip in trips]
    section.add(Figure("emulator start (each run)", "s", tuple(t.start_s for t in every)))
    section.add(Figure("CDK bootstrap in the emulator (each run)", "s", tuple(t.bootstrap_s for t in every)))
    return [section]
