"""The emulator server's request path (labkit.emulator_server), against moto 5.2.5's: one request at a time
(`serialize_requests`: moto's server is threaded and its backends have no locks; a class provision saw one
CreateStack fail mid-way with `dictionary changed size during iteration`, and its retry with AlreadyExistsException),
moto's module list read once (`remember_moto_modules`: moto lists its package folder for every request), and one
botocore loader for every service model (`share_model_loader`: moto makes a loader per model), and JSON templates
read as JSON (`read_json_templates_as_json`: moto reads every template with PyYAML's pure-Python loader)."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import pytest
import yaml
from moto import backends as moto_backends
from moto import server as moto_server
from moto.cloudformation.models import Stack
from moto.core import utils as moto_utils
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from labkit.emulator_server import (
    read_json_templates_as_json,
    remember_moto_modules,
    serialize_requests,
    share_model_loader,
)


def test_moto_server_answers_requests_on_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(moto_server, "run_simple", lambda *args, **kwargs: seen.update(kwargs))
    moto_server.main(["-H", "127.0.0.1", "-p", "5999"])
    assert seen["threaded"] is True


def four_requests_at_once(*, serialized: bool) -> tuple[int, list[str]]:
    """How many of four simultaneous requests were inside moto's dispatcher together at most, and the answers."""
    inside, most, answers = 0, 0, []
    count = threading.Lock()

    def slow_dispatch(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
        nonlocal inside, most
        with count:
            inside += 1
            most = max(most, inside)
        time.sleep(0.05)  # a backend's work, long enough for the other threads to arrive
        with count:
            inside -= 1
        return [environ["PATH_INFO"]]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DomainDispatcherApplication, "__call__", slow_dispatch)
        lock = serialize_requests(patch.setattr) if serialized else threading.Lock()
        app = DomainDispatcherApplication(lambda service: None)
        threads = [threading.Thread(target=lambda n=n: answers.extend(app({"PATH_INFO": f"/{n}"}, None)))
                   for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not lock.locked()
    return most, sorted(answers)


def test_requests_are_answered_one_at_a_time_and_every_one_is_answered() -> None:
    assert four_requests_at_once(serialized=True) == (1, ["/0", "/1", "/2", "/3"])


def test_without_the_lock_they_overlap() -> None:
    most, answers = four_requests_at_once(serialized=False)
    assert most > 1 and answers == ["/0", "/1", "/2", "/3"]


def folder_listings_to_route(monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[Any]]:
    """How often routing three requests lists a folder, and where they went."""
    listings = 0
    listdir = os.listdir

    def counted(path: Any) -> list[str]:
        nonlocal listings
        listings += 1
        return listdir(path)

    monkeypatch.setattr(os, "listdir", counted)
    app = DomainDispatcherApplication(lambda service: None)
    routes = [app.get_backend_for_host(host) for host in ("s3", "cloudformation", "localhost:5000")]
    return listings, routes


def test_moto_lists_its_package_folder_to_route_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    listings, routes = folder_listings_to_route(monkeypatch)
    assert listings >= 3 and routes[:2] == ["s3", "cloudformation"]


def test_the_module_list_is_read_once_and_routes_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    _, unpatched = folder_listings_to_route(monkeypatch)
    modules = remember_moto_modules(monkeypatch.setattr)
    assert "s3" in modules and "cloudformation" in modules and list(moto_backends.list_of_moto_modules()) == list(
        modules)
    listings, routes = folder_listings_to_route(monkeypatch)
    assert listings == 0 and routes == unpatched


def test_moto_makes_a_loader_for_every_model_and_the_emulator_shares_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert moto_utils.create_loader() is not moto_utils.create_loader()
    share_model_loader(monkeypatch.setattr)
    assert moto_utils.create_loader() is moto_utils.create_loader()
    assert moto_utils._load_service_model("sts", "service-2")["metadata"]["serviceId"] == "STS"


TEMPLATE = {"Parameters": {"Name": {"Type": "String", "Default": "yes"}},
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Ref": "Name"}}}}}
YAML_TEMPLATE = "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !Ref Name\n"


def parsed_and_yaml_reads(monkeypatch: pytest.MonkeyPatch, template: str) -> tuple[Any, int]:
    reads = 0
    load = yaml.load

    def counted(stream: Any, Loader: Any) -> Any:  # noqa: N803
        nonlocal reads
        reads += 1
        return load(stream, Loader=Loader)

    monkeypatch.setattr(yaml, "load", counted)
    return Stack.parse_template(template), reads


def test_moto_reads_a_json_template_with_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed, reads = parsed_and_yaml_reads(monkeypatch, json.dumps(TEMPLATE))
    assert parsed == TEMPLATE and reads == 1


def test_json_templates_are_read_as_json_and_yaml_ones_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    before, _ = parsed_and_yaml_reads(monkeypatch, YAML_TEMPLATE)
    read_json_templates_as_json(monkeypatch.setattr)
    parsed, reads = parsed_and_yaml_reads(monkeypatch, json.dumps(TEMPLATE, indent=1))
    assert parsed == TEMPLATE and reads == 0
    assert parsed_and_yaml_reads(monkeypatch, YAML_TEMPLATE) == (before, 1)
    assert before["Resources"]["Topic"]["Properties"]["TopicName"] == {"Ref": "Name"}
