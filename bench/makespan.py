"""How long until the class is ready in AWS, and how long its teardown takes: `python -m bench makespan`.

    python -m bench makespan --students 30 [--json]

The embedded emulator creates a stack in under a second, so these are figures of AWS time, from a model:

- The course of N students is synthesized for real (the same app `labctl provision` deploys), and each stack's
  AWS time is `labkit.emulator_timing.stack_seconds` of its template: the longest path through its resources,
  each taking its time from the one table `TIMES` (with sources; mostly estimates).
- Deploy and destroy follow the CDK CLI's own scheduling (toolkit-lib's WorkGraph, read from its source): a stack
  starts when the stacks it depends on (the assembly's dependencies) are done and fewer than `--concurrency`
  stacks are in flight; the ready ones start in the assembly's order. Each deploy first makes a change set
  (CHANGE_SET); the CLI sees a stack finish at its next DescribeStacks poll, every POLL seconds.
- CloudFormation's API rate is a token bucket (`CFN_RATE`, an estimate: AWS does not publish it). Every stack in
  flight costs the CLI's polls (DescribeStacks every 5 s, DescribeStackEvents every 2 s); when the class's polls
  ask for more than the rate, each poll waits its turn, so the CLI sees stacks finish later.
- Teardown is labctl's own order (labkit/ops/teardown.py): stop the machines, archive the buckets, snapshot the
  GPU homes, then delete the stacks; its steps outside CloudFormation take `OPERATIONS` times.

Figures, each in AWS minutes: class-ready (the first command to every student's environment usable), the
critical path (the slowest single student's environment with the class stacks it depends on, nothing else
running), and their ratio; the same for the teardown and for one late student. `--policy before` models the
orchestration as it was before issue 17 (8 stacks at once, machines stopped and buckets archived one by one).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.course import cdk_app_env, course_file
from bench.stats import Figure, Section
from course.config import MAX_STUDENTS, LabConfig
from labkit import ROOT
from labkit.emulator_timing import CFN_RATE, NOTEBOOK, OPERATIONS, TIMES, stack_seconds
from labkit.ops import stacks as stack_ops
from labkit.ops import teardown as teardown_ops

# The CDK CLI (toolkit-lib): `waitFor` polls DescribeStacks every 5 s; with more than one stack at once the
# progress is "events", whose StackActivityMonitor polls DescribeStackEvents every 2 s per stack.
POLL = 5.0
POLLS_PER_SECOND = 1 / POLL + 1 / 2.0
# CreateChangeSet, then DescribeChangeSet until it is ready (one poll), then ExecuteChangeSet: estimate.
CHANGE_SET = POLL


@dataclass(frozen=True)
class Policy:
    """How labctl orchestrates: stacks in flight at once (None: all of them), machines stopped together or one
    after another, buckets archived at once."""

    name: str
    concurrency: int | None
    parallel_stops: bool
    archive_workers: int

    def stacks_at_once(self, count: int) -> int:
        return stack_ops.concurrency(count) if self.concurrency is None else self.concurrency


NOW = Policy("now", None, True, teardown_ops.ARCHIVE_WORKERS)
BEFORE = Policy("before", 8, False, 1)
POLICIES = {policy.name: policy for policy in (NOW, BEFORE)}


@dataclass(frozen=True)
class Job:
    """One stack: `needs` are the stacks it depends on (for a delete: the stacks that depend on it)."""

    name: str
    student: str | None
    needs: frozenset[str]
    seconds: float
    resources: int = 0


def simulate(jobs: list[Job], at_once: int, *, rate: float | None = CFN_RATE) -> dict[str, float]:
    """When the CLI sees each job done, in AWS seconds from the command's start (the WorkGraph's scheduling)."""
    pending = {job.name: job for job in jobs}
    running: dict[str, float] = {}
    done: dict[str, float] = {}
    now = 0.0
    while pending or running:
        ready = [job for job in pending.values() if job.needs <= done.keys()]
        starting = ready[:max(0, at_once - len(running))]
        in_flight = len(running) + len(starting)
        # Polls beyond the API's rate queue: each poll interval stretches by the excess.
        stretch = max(1.0, in_flight * POLLS_PER_SECOND / rate) if rate else 1.0
        for job in starting:
            del pending[job.name]
            if job.seconds <= 0:  # nothing to change: the CLI skips it
                running[job.name] = now
                continue
            poll = POLL * stretch
            running[job.name] = now + CHANGE_SET + math.ceil(job.seconds / poll) * poll
        if not running:
            raise ValueError(f"dependency cycle among {sorted(pending)}")
        now = min(running.values())
        for name in [name for name, end in running.items() if end <= now]:
            done[name] = running.pop(name)
    return done


def _closure(jobs: Mapping[str, Job], names: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += jobs[name].needs
    return seen


def ready_times(jobs: list[Job], at_once: int, *, rate: float | None = CFN_RATE) -> tuple[float, float]:
    """(everyone ready, critical path): the class's makespan, and the slowest student's alone with what it needs."""
    by_name = {job.name: job for job in jobs}
    finished = simulate(jobs, at_once, rate=rate)
    students = sorted({job.student for job in jobs if job.student})
    critical = 0.0
    for student in students or [None]:
        own = [job for job in jobs if job.student == student] if student else jobs
        alone = [by_name[name] for name in sorted(_closure(by_name, (job.name for job in own)))]
        critical = max(critical, max(simulate(alone, len(alone), rate=None).values(), default=0.0))
    return max(finished.values(), default=0.0), critical


@dataclass
class Assembly:
    """A synthesized course: each stack's template, dependencies and student."""

    config: LabConfig
    directory: Path
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    depends: dict[str, frozenset[str]] = field(default_factory=dict)
    students: dict[str, str | None] = field(default_factory=dict)
    synth_seconds: float = 0.0

    @classmethod
    def synthesize(cls, students: int, workdir: Path) -> "Assembly":
        directory = workdir / f"students-{students}"
        directory.mkdir(parents=True, exist_ok=True)
        config, path = course_file(students, directory)
        out = directory / "cdk.out"
        started = time.monotonic()
        subprocess.run([sys.executable, str(ROOT / "app.py")], env=cdk_app_env(path, out, validation=False),
                       cwd=ROOT, check=True, capture_output=True)
        assembly = cls(config, out, synth_seconds=time.monotonic() - started)
        manifest = json.loads((out / "manifest.json").read_text())["artifacts"]
        stack_ids = {name for name, artifact in manifest.items() if artifact["type"] == "aws:cloudformation:stack"}
        units = {unit.construct_id: unit.student for unit in config.stacks()}
        for name in manifest:  # the assembly's order: the order the CLI's ready pool keeps
            if name in stack_ids:
                artifact = manifest[name]
                assembly.templates[name] = json.loads((out / artifact["properties"]["templateFile"]).read_text())
                assembly.depends[name] = frozenset(d for d in artifact.get("dependencies", []) if d in stack_ids)
                assembly.students[name] = units.get(name)
        return assembly

    def deploy_jobs(self, previous: "Assembly | None" = None) -> list[Job]:
        """Creating every stack; or, from `previous`, what `labctl provision` deploys (new and changed stacks;
        the unchanged ones the CLI also selects, as dependencies, cost nothing)."""
        jobs = []
        for name, template in self.templates.items():
            before = previous.templates.get(name) if previous else None
            if previous is None or before is None:
                seconds = stack_seconds(template, "create")
            else:
                seconds = 0.0 if before == template else stack_seconds(template, "update", before)
            jobs.append(Job(name, self.students[name], self.depends[name], seconds,
                            len(template.get("Resources", {}))))
        return jobs

    def delete_jobs(self) -> list[Job]:
        dependents: dict[str, set[str]] = {name: set() for name in self.templates}
        for name, needs in self.depends.items():
            for need in needs:
                dependents[need].add(name)
        return [Job(name, self.students[name], frozenset(dependents[name]), stack_seconds(template, "delete"))
                for name, template in self.templates.items()]


def teardown_drain(students: int, policy: Policy) -> tuple[float, float]:
    """(the class's, one student's) AWS seconds of the teardown before its first stack delete."""
    notebook_stop, gpu_stop = NOTEBOOK.stop or 0.0, TIMES["AWS::EC2::Instance"].stop or 0.0
    archive, snapshot = OPERATIONS["archive a lab bucket"][0], OPERATIONS["CreateSnapshot"][0]
    one = max(notebook_stop, gpu_stop) + archive + snapshot
    stops = max(notebook_stop, gpu_stop) if policy.parallel_stops else students * (notebook_stop + gpu_stop)
    archives = math.ceil(students / policy.archive_workers) * archive
    return stops + archives + snapshot, one  # snapshots start together and are waited for together


@dataclass
class Makespan:
    """One figure in AWS minutes: the class's, and the critical path's."""

    what: str
    class_minutes: float
    critical_minutes: float

    @property
    def ratio(self) -> float:
        return self.class_minutes / self.critical_minutes if self.critical_minutes else 1.0


def measure(students: int, policy: Policy, workdir: Path, *, rate: float | None = CFN_RATE,
            assemblies: dict[int, Assembly] | None = None) -> dict[str, Any]:
    assemblies = {} if assemblies is None else assemblies
    # The late student joins a class of `students`; at the one-account limit, the class one smaller.
    joined = min(students + 1, MAX_STUDENTS)
    for count in (students, joined - 1, joined):
        if count not in assemblies:
            assemblies[count] = Assembly.synthesize(count, workdir)
    course, before_late, grown = assemblies[students], assemblies[joined - 1], assemblies[joined]
    synth = course.synth_seconds
    deploy = course.deploy_jobs()
    made, critical = ready_times(deploy, policy.stacks_at_once(len(deploy)), rate=rate)
    delete = course.delete_jobs()
    drained, one_drained = teardown_drain(students, policy)
    deleted, critical_delete = ready_times(delete, policy.stacks_at_once(len(delete)), rate=rate)
    late = grown.deploy_jobs(previous=before_late)
    late_student = next(job.student for job in late if job.student and job.student not in before_late.students.values())
    changed = [job for job in late if job.seconds > 0]
    late_made = max(simulate(late, policy.stacks_at_once(len(changed)), rate=rate).values(), default=0.0)
    by_name = {job.name: job for job in late}
    own = [by_name[name] for name in _closure(by_name, (j.name for j in late if j.student == late_student))]
    late_critical = max(simulate(own, len(own), rate=None).values(), default=0.0)
    figures = [
        Makespan("class ready", (synth + made) / 60, (synth + critical) / 60),
        Makespan("teardown", (drained + deleted) / 60, (one_drained + critical_delete) / 60),
        Makespan("late student", (grown.synth_seconds + late_made) / 60, (grown.synth_seconds + late_critical) / 60),
    ]
    return {
        "students": students,
        "policy": asdict(policy),
        "stacks": len(deploy),
        "concurrency": policy.stacks_at_once(len(deploy)),
        "cfn_rate_per_second": rate,
        "synth_seconds": round(synth, 1),
        "late_student_changes": sorted(job.name for job in changed),
        "figures": [{"what": f.what, "class_minutes": round(f.class_minutes, 1),
                     "critical_path_minutes": round(f.critical_minutes, 1), "ratio": round(f.ratio, 2)}
                    for f in figures],
    }


# Issue 17's targets: the class's figure over its critical path, by class size (30 and fewer: the first).
TARGETS = ((30, 1.25), (MAX_STUDENTS, 1.5))


def target_ratio(students: int) -> float:
    return next(ratio for size, ratio in TARGETS if students <= size)


def run(sizes: list[int], policies: list[Policy], *, rate: float | None = CFN_RATE) -> list[dict[str, Any]]:
    """`measure` for each size and policy, each course synthesized once."""
    results = []
    with tempfile.TemporaryDirectory(prefix="labkit-makespan-") as workdir:
        assemblies: dict[int, Assembly] = {}
        for students in sizes:
            for policy in policies:
                results.append(measure(students, policy, Path(workdir), rate=rate, assemblies=assemblies))
    return results


def bench_makespan_sections(sizes: tuple[int, ...] = (1, 30, 200)) -> list[Section]:
    """For `python -m bench`: the ratios of labctl's orchestration now, judged against issue 17's targets."""
    section = Section("AWS makespan, modelled (class figure / critical path; labkit.emulator_timing)")
    results = run(list(sizes), [NOW])
    for result in results:
        students, limit = result["students"], target_ratio(result["students"])
        for figure in result["figures"]:
            section.add(Figure(f"{figure['what']}, {students} students", "x", (figure["ratio"],)).within(
                limit, f"<= {limit}"))
    section.facts["results"] = results
    return [section]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench makespan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, nargs="+", default=[30], help="class sizes (default 30)")
    parser.add_argument("--policy", choices=[*POLICIES, "both"], default="now",
                        help="orchestration: now (default), before (issue 17's starting point), or both")
    parser.add_argument("--cfn-rate", type=float, default=CFN_RATE,
                        help=f"CloudFormation API requests a second (default {CFN_RATE}, an estimate); 0: unlimited")
    parser.add_argument("--json", action="store_true", help="print JSON (the headline ratio on the last line)")
    args = parser.parse_args(argv)
    if any(not 1 <= count <= MAX_STUDENTS for count in args.students):
        parser.error(f"--students: 1 to {MAX_STUDENTS} (one account's limit)")
    policies = list(POLICIES.values()) if args.policy == "both" else [POLICIES[args.policy]]
    results = run(args.students, policies, rate=args.cfn_rate or None)
    last = [result for result in results if result["policy"]["name"] == policies[0].name][-1]
    headline = last["figures"][0]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            print(f"{result['students']} students, policy {result['policy']['name']}: {result['stacks']} stacks, "
                  f"{result['concurrency']} at once, synthesis {result['synth_seconds']} s")
            for figure in result["figures"]:
                print(f"  {figure['what']:<13} {figure['class_minutes']:6.1f} min   critical path "
                      f"{figure['critical_path_minutes']:5.1f} min   ratio {figure['ratio']:.2f}")
    print(f"class ready / critical path, {last['students']} students, policy {policies[0].name}: "
          f"{headline['ratio']:.2f}")
    return 0
