"""Where labkit acts: the embedded emulator or a real account, as boto3 clients plus the CDK CLI's environment."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3

from labkit.emulator import Endpoint

ClientFactory = Callable[[str], Any]


@dataclass(frozen=True)
class Target:
    """`clients` for boto3 calls, `env` for the CDK CLI child process.

    The targets below hand out one client per service and reuse it: creating a client costs milliseconds, and
    a 30-student deploy and destroy would otherwise create about 350 of them (README, "Performance").
    """

    label: str
    clients: ClientFactory
    env: dict[str, str]
    emulator: bool
    # The emulator changes state instantly; AWS needs minutes, so poll patiently there.
    wait_delay: int = 30


def emulator_target(endpoint: Endpoint) -> Target:
    session = endpoint.session()
    # One client per service: operations ask for clients freely, and each new botocore client costs about 30 ms.
    return Target(f"embedded emulator at {endpoint.url}", functools.cache(session.client), endpoint.env(), True,
                  wait_delay=1)


def aws_target(region: str) -> Target:
    session = boto3.Session(region_name=region)
    return Target(f"AWS ({region})", functools.cache(session.client), {"AWS_REGION": region}, False)


# Reads of many small things (a class's stacks, its students' machines) run this many at a time: against AWS
# each call waits 50-100 ms, so 200 students' stacks read one by one would take a minute.
PARALLEL_READS = 8


def parallel(function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """`function` over `items`, PARALLEL_READS at a time, results in order. boto3 clients are thread-safe; the
    caller creates the ones it needs first (creating them is not)."""
    with ThreadPoolExecutor(PARALLEL_READS) as pool:
        return list(pool.map(function, items))
