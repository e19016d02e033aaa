"""The makespan model: the CDK CLI's scheduling as simulated, and one small class through the whole benchmark."""

from __future__ import annotations

import json

import pytest

from bench import makespan
from bench.makespan import BEFORE, CHANGE_SET, NOW, POLL, Job, ready_times, simulate
from labkit.ops import stacks as stack_ops


def job(name: str, seconds: float, *needs: str, student: str | None = None) -> Job:
    return Job(name, student, frozenset(needs), seconds)


def test_a_stack_is_seen_done_at_the_poll_after_its_resources_finish() -> None:
    done = simulate([job("a", 7)], 1, rate=None)
    assert done["a"] == CHANGE_SET + 2 * POLL  # 7 s of work, seen at the 10 s poll


def test_a_stack_starts_when_what_it_depends_on_is_done() -> None:
    done = simulate([job("class", 10), job("student", 10, "class")], 10, rate=None)
    assert done["student"] == done["class"] + CHANGE_SET + 10


def test_concurrency_queues_independent_stacks() -> None:
    jobs = [job(name, 10) for name in "abc"]
    assert max(simulate(jobs, 3, rate=None).values()) == CHANGE_SET + 10
    assert max(simulate(jobs, 1, rate=None).values()) == 3 * (CHANGE_SET + 10)


def test_polls_beyond_the_api_rate_see_stacks_later() -> None:
    jobs = [job(f"s{i}", 60) for i in range(100)]
    assert max(simulate(jobs, 100, rate=10).values()) > max(simulate(jobs, 100, rate=None).values())


def test_an_unchanged_stack_costs_nothing() -> None:
    assert simulate([job("same", 0)], 1, rate=None) == {"same": 0.0}


def test_a_dependency_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        simulate([job("a", 1, "b"), job("b", 1, "a")], 2, rate=None)


def test_the_critical_path_is_the_slowest_student_with_the_class_stacks_they_need() -> None:
    jobs = [job("class", 100), job("other-class", 500), job("alice", 50, "class", student="alice"),
            job("bob", 20, "class", student="bob")]
    made, critical = ready_times(jobs, 1, rate=None)
    assert critical == 100 + 50 + 2 * CHANGE_SET  # other-class is no student's: not on the path
    assert made > critical  # one at a time, everything queues


def test_labctl_runs_every_stack_of_a_command_at_once() -> None:
    assert stack_ops.concurrency(64) == 64 and stack_ops.concurrency(0) == 1
    assert NOW.stacks_at_once(404) == 404 and BEFORE.stacks_at_once(404) == 8


def test_a_small_class_through_the_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert makespan.main(["--students", "2", "--policy", "both", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    results = json.loads("\n".join(out[:-1]))
    assert out[-1].startswith("class ready / critical path, 2 students, policy now: ")
    now, before = results
    assert now["stacks"] == before["stacks"] == 2 * 2 + 4  # two per student, four class stacks
    ready = {result["policy"]["name"]: result["figures"][0] for result in results}
    assert ready["now"]["ratio"] <= ready["before"]["ratio"]
    assert [figure["what"] for figure in now["figures"]] == ["class ready", "teardown", "late student"]
    # A notebook takes minutes in AWS: nobody is ready sooner than that.
    assert now["figures"][0]["critical_path_minutes"] >= 5
    assert now["late_student_changes"]  # the late student's own stacks at least


def test_class_sizes_past_the_one_account_limit_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        makespan.main(["--students", "201"])
    assert "--students: 1 to 200" in capsys.readouterr().err
