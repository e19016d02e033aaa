"""Where the whole app's synthesis time goes: app.py's steps, timed one by one, with the jsii round-trips
(Python -> Node kernel requests) of each step counted. Run as its own process, like app.py:

    CDK_OUTDIR=/tmp/out CDK_CONTEXT_JSON='{"labkit:config": "lab.toml"}' python -m bench.synth_phases

Prints one JSON line; the parent adds the process start and exit from its own clock (see bench/synth.py).
"""

from __future__ import annotations

import gc
import json
import time
from collections import Counter
from typing import Any

STARTED = time.time()


class Phases:
    """Consecutive phases of one process: seconds of each, and the jsii requests sent during each."""

    def __init__(self, first: str) -> None:
        self.name, self.start = first, time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.requests: Counter[str] = Counter()
        self._count_jsii_requests()

    def next(self, name: str) -> None:
        self.seconds[self.name] = time.perf_counter() - self.start
        self.name, self.start = name, time.perf_counter()

    def _count_jsii_requests(self) -> None:
        # A private jsii hook, acceptable in a benchmark: every request the Python side sends to Node.
        from jsii._kernel.providers import process

        send = process._NodeProcess.send

        def counting(node: Any, request: Any, response_type: Any) -> Any:
            self.requests[self.name] += 1
            return send(node, request, response_type)

        process._NodeProcess.send = counting  # type: ignore[method-assign]


def main() -> None:
    gc.disable()  # as app.py does
    phases = Phases("import aws_cdk")
    from aws_cdk import App

    phases.next("import labkit (config, stacks, infra, cdk-nag)")
    from course.config import load_config
    from stacks import build_app

    phases.next("build the construct tree")
    app = App()
    build_app(app, load_config(app.node.try_get_context("labkit:config")))
    phases.next("synth (templates, cdk-nag, validation if on)")
    app.synth()
    phases.next("done")
    gc.freeze()
    print(json.dumps({"started": STARTED, "ended": time.time(), "seconds": phases.seconds,
                      "jsii_requests": {name: phases.requests[name] for name in phases.seconds}}))


if __name__ == "__main__":
    main()
