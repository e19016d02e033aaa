"""Account-per-student synthesis of a class of N, by hand: what the benchmark (bench/synth.py) times for 30 and
300 students. app.py runs on a generated course in a fresh process, as `cdk synth` runs it; the class is an OU
to the stack set, so the time and the templates should not depend on N.

    python -m bench.stackset_synth --students 300 [--validation]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.synth import synthesize, stackset_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stackset_synth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, required=True)
    parser.add_argument("--validation", action="store_true", help="with CDK's CloudFormation validation")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="labkit-stackset-") as workdir:
        run = replace(stackset_run(args.students, Path(workdir)), validation=args.validation)
        seconds, _ = synthesize(run)
    print(f"{run.label}: {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
