"""labkit benchmarks: synthesis, class scale, emulator round-trip, teardown sweep, test suite.

    python -m bench                 # everything, 3 runs each (about 30 minutes on 2 cores, half of it the suite)
    python -m bench --quick         # 1 run, small sizes, no 30-student round-trip, no test suite (about 2 minutes)
    python -m bench --only synth sweep --runs 5
    python -m bench idle            # idle dollars on a simulated term, labkit's rules beside the anchors' (< 60 s)
    python -m bench makespan --students 1 30 200 [--policy both] [--json]   # AWS minutes until the class is ready

Prints a table (median, min, max of the runs; targets from issue 6) and writes JSON and a Markdown table
(bench/results/latest.json and latest.md unless --out says otherwise). Timings are not asserted anywhere: a
shared CI machine would make such a test flaky, so the numbers are reported and read, not gated.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from bench import idle, makespan
from bench.report import markdown, print_table
from bench.roundtrip import bench_round_trip
from bench.stats import Section
from bench.suite import bench_suite
from bench.sweep import bench_sweep
from bench.synth import bench_synth
from labkit import ROOT

RESULTS = ROOT / "bench" / "results" / "latest.json"
BENCHMARKS = ("synth", "roundtrip", "sweep", "suite", "idle", "makespan")


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["idle"]:
        return idle.main(RESULTS.parent)
    if args_in[:1] == ["makespan"]:
        return makespan.main(args_in[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, help="runs per figure (default 3, or 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a fast subset: 1 run, small classes, no suite")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(args_in)
    runs = args.runs or (1 if args.quick else 3)
    selected = args.only or [name for name in BENCHMARKS if not (args.quick and name == "suite")]
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)

    load_before = os.getloadavg()[0]
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as workdir:
        jobs: dict[str, Callable[[], list[Section]]] = {
            "synth": lambda: bench_synth(runs, args.quick, Path(workdir)),
            "roundtrip": lambda: bench_round_trip(runs, args.quick, Path(workdir)),
            "sweep": lambda: bench_sweep(runs),
            "suite": lambda: bench_suite(runs),
            # Deterministic (a seeded trace on an injected clock): one run says it all.
            "idle": idle.bench_idle_sections,
            # A model (AWS minutes from the timing table): deterministic too; --quick leaves out 200 students.
            "makespan": lambda: makespan.bench_makespan_sections((1, 30) if args.quick else (1, 30, 200)),
        }
        for name in selected:
            console.print(f"[bold]running {name}[/bold] ({runs} run(s))")
            sections += jobs[name]()
    meta = {
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "runs": runs,
        "quick": args.quick,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    print_table(console, sections, runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {**meta, "sections": [{"title": s.title, "figures": [f.as_json() for f in s.figures], "facts": s.facts}
                                   for s in sections]}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(sections, meta) + "\n")
    console.print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    missed = [f.name for s in sections for f in s.figures if f.met is False]
    if missed:
        console.print(f"targets missed: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
