"""A content-addressed cache of synthesized cloud assemblies, for the test suite's many CDK CLI runs.

Every `cdk deploy` or `cdk destroy` typed without `--app` runs the app again (about 2.5 s of CPU: the jsii kernel,
the construct tree, cdk-nag); the emulator journeys run the CLI about 80 times over a handful of distinct courses.
With LABKIT_SYNTH_CACHE set to a folder, app.py first computes the key of everything a synthesis reads and, when
that folder holds an assembly for the key, copies it to the CLI's output folder instead of synthesizing. The first
synthesis of each key is a real one, and a failed synthesis is never stored. Off unless the variable is set: a user's
`cdk deploy` always synthesizes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from course.config import LabConfig
from labkit import ROOT

VARIABLE = "LABKIT_SYNTH_CACHE"
# The project's code that a synthesis runs or packages (Lambda code is an asset).
SOURCES = ("app.py", "course", "infra", "stacks", "lab_scripts", "labkit")
# Environment the app or aws-cdk-lib reads while synthesizing.
ENVIRONMENT = ("CDK_VALIDATION", "CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "CDK_CLI_VERSION", "CDK_CLI_ASM_VERSION")
# Context that changes no template here: the config path (its contents are keyed instead), the stacks the CLI
# selects for bundling (no asset of this app is bundled; Lambda code is a folder copied as it is), and labctl's
# leave to synthesize an expired course (an expired course without it fails to load, and is never looked up).
UNKEYED_CONTEXT = ("labkit:config", "aws:cdk:bundling-stacks", "labkit:allow-expired")


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    value = environ.get(VARIABLE)
    return Path(value) if value else None


def sources_digest(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        top = root / name
        files = [top] if top.is_file() else sorted(path for path in top.rglob("*")
                                                   if path.is_file() and "__pycache__" not in path.parts)
        for path in files:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def key(config: LabConfig, environ: Mapping[str, str] = os.environ, *, today: dt.date | None = None,
        root: Path = ROOT) -> str:
    """Everything the synthesis of `config` depends on: the parsed course (roster included), the CLI's context and
    environment, the date (expiry checks), the interpreter, the pinned libraries and the project's sources."""
    context = {name: value for name, value in json.loads(environ.get("CDK_CONTEXT_JSON") or "{}").items()
               if name not in UNKEYED_CONTEXT}
    parts = {
        "config": repr(config),
        "context": context,
        "environment": {name: environ.get(name) for name in ENVIRONMENT},
        "today": (today or dt.date.today()).isoformat(),
        "python": sys.version,
        "libraries": {name: metadata.version(name) for name in ("aws-cdk-lib", "constructs", "cdk-nag")},
        "sources": sources_digest(root),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def restore(cache: Path, entry: str, outdir: Path) -> bool:
    """Copy a stored assembly into `outdir`; False when there is none for `entry`."""
    stored = cache / entry
    if not (stored / "manifest.json").is_file():
        return False
    shutil.copytree(stored, outdir, dirs_exist_ok=True)
    return True


def store(cache: Path, entry: str, outdir: Path) -> None:
    """Keep a finished synthesis: copied aside, then renamed into place, so that a parallel run never reads half."""
    if (cache / entry).exists():
        return
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry[:12]}-", dir=cache))
    shutil.copytree(outdir, staging, dirs_exist_ok=True)
    try:
        staging.rename(cache / entry)
    except OSError:  # another run stored the same key first
        shutil.rmtree(staging, ignore_errors=True)
