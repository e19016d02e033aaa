"""The idle benchmark's simulation: the trace it claims, and figures that can fail."""

from __future__ import annotations

from bench import idle


def test_the_trace_is_the_term_the_readme_describes() -> None:
    trace = idle.make_trace()
    facts = idle.trace_facts(trace)
    assert facts["sessions"] == idle.STUDENTS * idle.SESSIONS_PER_WEEK * idle.DAYS // 7 + 1  # + the runaway
    assert facts["segments"]["training"] > 0 and facts["segments"]["kernel"] > 0
    assert facts["segments"]["idle_open"] > 0 and facts["segments"]["runaway"] == 1 and facts["after_hours"] > 0
    assert trace == idle.make_trace()  # seeded: every run replays the same term


def test_labkit_meets_the_targets_and_a_cpu_only_rule_does_not() -> None:
    trace = idle.make_trace()
    labkit = idle.replay(idle.RULES[0], trace)
    assert max(labkit.idle_minutes) <= 15 and labkit.wrongful == 0
    assert 0 < labkit.overshoot_usd <= idle.GUARD_MINUTES / 60 * idle.PRICE["notebook"] and labkit.cap_stops >= 1
    # The guard's meter, from start/stop times and its ledger tags, is within 1 % of what was billed.
    assert abs(labkit.metered_usd - labkit.total_usd) <= 0.01 * labkit.total_usd
    before = idle.replay(idle.RULES[2], trace)  # CPU alarm and kernel/terminal check: silent training is stopped
    assert before.wrongful > 0
