"""A student saving a file every 50 ms with the key from their handout while the teardown runs: every write S3
acknowledged is in the verified archive, and the key is deactivated before any bucket is listed.

The emulator accepts an inactive key (moto does not check a key's status); AWS refuses it. So the writer plays
IAM's part: it asks whether its key is still active before each write, as AWS does on every request."""

from __future__ import annotations

import configparser
import json
import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from course.config import to_toml
from lab_scripts import buckets
from labkit.emulator import Emulator, Endpoint
from labkit.events import BucketArchived, Collect, KeysDeactivated
from labkit.ops.handouts import handouts
from labkit.ops.provision import prepare, provision
from labkit.ops.teardown import Journal, teardown
from labkit.target import Target, emulator_target
from tests.conftest import make_config

pytestmark = pytest.mark.emulator


@pytest.fixture
def fresh() -> Iterator[tuple[Endpoint, Target]]:
    with Emulator("us-east-1") as endpoint:
        running = emulator_target(endpoint)
        yield endpoint, dataclasses.replace(running, env={**running.env, "CDK_VALIDATION": "false"})


def test_every_acknowledged_write_is_archived_and_the_key_is_frozen_first(
        fresh: tuple[Endpoint, Target], tmp_path: Path) -> None:
    endpoint, target = fresh
    config = dataclasses.replace(make_config(course={"id": "wr101"}, students=["alice"]),
                                 expires=dt.date.today() + dt.timedelta(days=30))
    path = tmp_path / "course.toml"
    path.write_text(to_toml(config))
    provision(config, path, target, prepare(config, path, target))
    handouts(target, config, ["alice"], tmp_path / "handouts")
    profile = configparser.ConfigParser()
    profile.read(tmp_path / "handouts" / "alice.credentials")
    key = profile[config.course_id]
    session = boto3.Session(aws_access_key_id=key["aws_access_key_id"],
                            aws_secret_access_key=key["aws_secret_access_key"], region_name=config.region)
    s3 = session.client("s3", endpoint_url=endpoint.url)
    iam = target.clients("iam")
    user, bucket = config.names.student("alice").containers_user, config.names.student("alice").bucket

    acknowledged: list[str] = []
    refused: list[str] = []
    stop = threading.Event()

    def student_saves() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            name = f"work/save-{number:04d}.txt"
            try:
                keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
            except iam.exceptions.NoSuchEntityException:
                keys = []  # the teardown deleted the user: its keys are refused too
            if not any(k["AccessKeyId"] == key["aws_access_key_id"] and k["Status"] == "Active" for k in keys):
                refused.append(name)  # what IAM answers an inactive key in AWS
            else:
                s3.put_object(Bucket=bucket, Key=name, Body=name.encode())
                acknowledged.append(name)
            time.sleep(0.05)

    writer = threading.Thread(target=student_saves, daemon=True)
    writer.start()
    time.sleep(1)  # saves before the teardown starts
    events = Collect()
    result = teardown(config, path, target, tmp_path / "archive", events, journal=Journal(None))
    stop.set()
    writer.join(timeout=5)

    assert result.audit.clean, result.audit.leftovers
    manifest = tmp_path / "archive" / bucket / "manifest.json"
    buckets.verify_archive(manifest)
    archived = {entry["key"] for entry in json.loads(manifest.read_text())["versions"]}
    assert acknowledged and set(acknowledged) <= archived, sorted(set(acknowledged) - archived)[:5]
    assert refused  # the student kept trying after the freeze
    order = [type(event) for event in events.events if isinstance(event, (KeysDeactivated, BucketArchived))]
    assert order.index(KeysDeactivated) < order.index(BucketArchived)
    assert all(kind is BucketArchived for kind in order[order.index(BucketArchived):])
