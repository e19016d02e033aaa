"""The embedded AWS emulator: moto in server mode on localhost, started and owned by labkit.

The CDK CLI and boto3 reach it through AWS_ENDPOINT_URL, so the stacks and lab scripts run unchanged
against it and against a real account.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from labkit import ROOT
from labkit.cdk import UNSET
from labkit.emulator_timing import Timing

# moto's default account; lab.toml uses it so names derived from the account match inside the emulator.
EMULATOR_ACCOUNT = "123456789012"
STATE_FILE = ROOT / ".labkit" / "emulator.json"
LOG_FILE = ROOT / ".labkit" / "emulator.log"
# What the CDK CLI's modern bootstrap publishes, and every CDK template checks before it deploys.
BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
# UNSET (labkit.cdk): an empty AWS_PROFILE is a profile named "" to boto3 and the aws CLI (`The config profile ()
# could not be found`), and a set one names a profile that may not exist: the emulator's environment has none.


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Endpoint:
    port: int
    region: str

    @property
    def url(self) -> str:
        # CloudFormation in moto resolves template URLs built from "localhost", not from "127.0.0.1".
        return f"http://localhost:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for child processes (CDK CLI, boto3) that must talk to the emulator only."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            # Obvious test values: the emulator accepts any credentials, and these can never reach AWS.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "CDK_DISABLE_VERSION_CHECK": "1",
            # The CLI's deploy, destroy, synth and bootstrap hand a usage report to a detached Node process that
            # posts it to AWS: about 0.15 CPU-s a command, and a report of runs that never reached AWS.
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        }

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (this process's environment by default) pointed at the emulator: `env()` set, `UNSET` removed."""
        merged = {key: value for key, value in (os.environ if base is None else base).items() if key not in UNSET}
        return {**merged, **self.env()}

    def shell_lines(self) -> list[str]:
        """What `labctl local env` prints for `eval "$(labctl local env)"`: unset the profile, export the rest."""
        return [f"unset {key}" for key in UNSET] + [
            f"export {key}={shlex.quote(value)}" for key, value in self.env().items()]

    def session(self) -> "EmulatorSession":
        return EmulatorSession(self)


class EmulatorSession:
    """boto3 clients bound to the emulator, whatever the caller's environment says."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._session = boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            region_name=endpoint.region,
        )

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self._endpoint.url)  # type: ignore[call-overload]


def wait_ready(endpoint: Endpoint, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/moto-api/", timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"emulator did not answer on port {endpoint.port} within {timeout:.0f} s") from None
            time.sleep(0.1)


class Emulator:
    """A moto server in a child process; use as a context manager so it never outlives the job.

    `timing` turns on the AWS timing model (labkit.emulator_timing; off by default, so tests and the demo stay
    fast): `Emulator(region, timing=Timing(time_scale=0.01))` makes a 5-minute notebook stack take 3 s.
    """

    def __init__(self, region: str, port: int | None = None, *, timing: Timing | None = None) -> None:
        self.endpoint = Endpoint(port or free_port(), region)
        self.timing = timing
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Endpoint:
        LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
        with LOG_FILE.open("ab") as log:
            # The server's request log is where an emulator 500 is explained; keep it out of the terminal.
            self._process = subprocess.Popen(
                [sys.executable, "-m", "labkit.emulator_server", "--port", str(self.endpoint.port),
                 "--region", self.endpoint.region, *(self.timing.server_args() if self.timing else [])],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_ready(self.endpoint)
        return self.endpoint

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("emulator is not running")
        return self._process.pid

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def is_bootstrapped(endpoint: Endpoint) -> bool:
    try:
        endpoint.session().client("ssm").get_parameter(Name=BOOTSTRAP_PARAMETER)
    except ClientError:
        return False
    return True


def bootstrap(endpoint: Endpoint, account: str = EMULATOR_ACCOUNT) -> bool:
    """CDK-bootstrap the emulator with the real `cdk bootstrap` (CDKToolkit stack, asset bucket, the version
    parameter), so a plain `cdk deploy` works next; True when it ran, False when it was already bootstrapped.

    The real CLI rather than a seeded imitation: the bootstrap template is the CLI's own and changes with it.
    `--app ""`: the environment is named, so the CLI does not synthesize an app first (5 of its 6 s).
    """
    if is_bootstrapped(endpoint):
        return False
    from labkit.cdk import cdk_executable  # the CDK CLI is only needed here, not to run the emulator

    env = {**endpoint.child_env(), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    done = subprocess.run([str(cdk_executable()), "bootstrap", f"aws://{account}/{endpoint.region}", "--app", "",
                           "--no-notices", "--no-color"], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-1:]
        raise RuntimeError(f"cdk bootstrap of the emulator failed (exit {done.returncode}): {' '.join(last)}")
    return True


def start_detached(region: str, port: int | None = None, state_file: Path = STATE_FILE, *,
                   bootstrap_cdk: bool = False, account: str = EMULATOR_ACCOUNT,
                   timing: Timing | None = None) -> Endpoint:
    """Start an emulator that outlives this process (`labctl local up`); its pid is kept in `state_file`.

    With `bootstrap_cdk` (what `labctl local up` passes) it is CDK-bootstrapped before this returns, so the first
    `cdk deploy` needs no extra step; without, the region is empty (about 2-5 s sooner).
    """
    if state_file.exists():
        running = read_state(state_file)
        if running:
            raise RuntimeError(f"emulator already running at {running.url} (labctl local down stops it)")
    emulator = Emulator(region, port, timing=timing)
    endpoint = emulator.start()
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps({"pid": emulator.pid, "port": endpoint.port, "region": region}))
    if bootstrap_cdk:
        try:
            bootstrap(endpoint, account)
        except Exception:
            stop_detached(state_file)  # half-ready is worse than not started: `local up` can simply run again
            raise
    return endpoint


def read_state(state_file: Path = STATE_FILE) -> Endpoint | None:
    """The detached emulator, or None when none is running."""
    try:
        state = json.loads(state_file.read_text())
        os.kill(state["pid"], 0)
    except (OSError, ValueError, KeyError):
        return None
    return Endpoint(state["port"], state["region"])


def stop_detached(state_file: Path = STATE_FILE) -> bool:
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return False
    try:
        os.killpg(state["pid"], signal.SIGTERM)
    except OSError:
        pass
    state_file.unlink(missing_ok=True)
    return True
