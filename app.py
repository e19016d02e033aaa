#!/usr/bin/env python3
"""CDK entry point: read the course file named by context `labkit:config`, validate it, build the stacks."""

from __future__ import annotations

import gc
import sys
from pathlib import Path


def cached(outdir: str | None) -> tuple[Path, str] | None:
    """With LABKIT_SYNTH_CACHE set (the test suite), a stored assembly of the same inputs is copied to `outdir`
    and the process ends; otherwise the cache and key to store this synthesis under, or None when there is none."""
    import json
    import os

    from course.config import ConfigError, load_config
    from labkit import synth_cache

    cache = synth_cache.cache_dir()
    if cache is None or not outdir:
        return None
    context = json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}")
    try:
        config = load_config(context.get("labkit:config") or "lab.toml",
                             allow_expired=str(context.get("labkit:allow-expired")).lower() == "true")
    except ConfigError:
        return None  # the synthesis below reports it
    entry = synth_cache.key(config)
    if synth_cache.restore(cache, entry, Path(outdir)):
        sys.exit(0)
    return cache, entry


def main() -> None:
    import os

    outdir = os.environ.get("CDK_OUTDIR")
    keep = cached(outdir)
    # Imported here, after gc.disable() below, so that the imports run without cycle collections.
    from aws_cdk import App

    from course.config import ConfigError, load_config
    from stacks import build_app

    app = App()
    path = app.node.try_get_context("labkit:config") or "lab.toml"
    # Teardown of an expired course must still synthesize; labctl passes this only for destroy.
    allow_expired = str(app.node.try_get_context("labkit:allow-expired")).lower() == "true"
    try:
        config = load_config(path, allow_expired=allow_expired)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        # Inside the try: account-per-student mode synthesizes (and nag-checks) the student template while building.
        build_app(app, config)
        app.synth()
        if keep and outdir:
            from labkit import synth_cache

            synth_cache.store(keep[0], keep[1], Path(outdir))
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
        # The findings were already printed above by the validation report.
        print("error: validation failed: cdk-nag AwsSolutions or CloudFormation's template checks (findings above, "
              "and in validation-report.json)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    # A synthesis process is short and keeps nearly all it creates (aws_cdk's generated classes, the construct
    # tree) until it exits, so Python's cycle collector only costs time here: about 0.1 s of collections during
    # the imports and 0.3 s for the final one at exit, of a 1.4 s synthesis (README, "Performance"). Freezing
    # skips that final pass; the exit still runs atexit (which stops the jsii kernel) and flushes output.
    gc.disable()
    main()
    gc.freeze()
