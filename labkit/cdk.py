"""Runs the project's pinned CDK CLI (node_modules) against AWS or the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from labkit import ROOT

# Where synthesis writes the app; LABKIT_ASSEMBLY gives each parallel test worker its own.
ASSEMBLY = Path(os.environ.get("LABKIT_ASSEMBLY", ROOT / ".labkit" / "cdk.out"))
# A profile named in the caller's shell would override the emulator's credentials in the CLI's SDK.
UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")

# Lines the CLI and jsii print on every run that say nothing about this deploy.
_NOISE = ("NodeVersionSupportWarning", "versions published after", "will require node", "To continue receiving",
          "and security updates", "More information can be found", "node --trace-warnings", "Node 20 is end-of-life")


class CdkError(RuntimeError):
    """The CDK CLI failed; the message carries its last meaningful lines."""


def cdk_executable() -> Path:
    """scripts/cdk: the pinned CLI in node_modules, started from a V8 code cache (about 0.5 s less per command)."""
    if not (ROOT / "node_modules" / ".bin" / "cdk").exists():
        raise CdkError("the CDK CLI is not installed; run scripts/setup first")
    return ROOT / "scripts" / "cdk"


def run_cdk(
    args: list[str],
    *,
    env: dict[str, str],
    config_path: Path,
    allow_expired: bool = False,
    echo: Callable[[str], None] = print,
) -> None:
    """Run `cdk <args>` from the project root, streaming its progress lines through `echo`."""
    context = ["-c", f"labkit:config={config_path.resolve()}"]
    if allow_expired:
        context += ["-c", "labkit:allow-expired=true"]
    child_env = {
        **{key: value for key, value in os.environ.items() if not (key in UNSET and "AWS_ENDPOINT_URL" in env)},
        **env,
        # The app must run on this interpreter (the venv), whatever `python3` is on PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_VERSION_CHECK": "1",
    }
    command = [str(cdk_executable()), *args, *context, "--no-notices", "--no-color"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    tail: list[str] = []
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.rstrip()
        if not line.strip() or any(noise in line for noise in _NOISE):
            continue
        tail = (tail + [line])[-15:]
        echo(line)
    if process.wait() != 0:
        raise CdkError(f"cdk {args[0]} failed (exit {process.returncode}): " + " | ".join(tail[-3:]))
