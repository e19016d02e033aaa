"""The emulator server answers one request at a time (labkit.emulator_server.serialize_requests), against moto
5.2.5's threaded server, whose backends have no locks (a class provision saw one CreateStack fail mid-way with
`dictionary changed size during iteration`, and its retry with AlreadyExistsException)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from moto import server as moto_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from labkit.emulator_server import serialize_requests


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
