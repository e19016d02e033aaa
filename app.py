#!/usr/bin/env python3
"""CDK entry point: read the course file named by context `labkit:config`, validate it, build the stacks."""

from __future__ import annotations

import sys

from aws_cdk import App

from labkit.config import ConfigError, load_config
from stacks import build_app


def main() -> None:
    app = App()
    path = app.node.try_get_context("labkit:config") or "lab.toml"
    # Teardown of an expired course must still synthesize; labctl passes this only for destroy.
    allow_expired = str(app.node.try_get_context("labkit:allow-expired")).lower() == "true"
    try:
        config = load_config(path, allow_expired=allow_expired)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    build_app(app, config)
    try:
        app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
        # The findings were already printed above by the validation report.
        print("error: cdk-nag AwsSolutions found unacknowledged findings (see validation-report.json)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
