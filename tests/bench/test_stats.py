"""The benchmark's arithmetic (no timings are asserted anywhere: they are measured and reported by bench/)."""

from __future__ import annotations

import math

import pytest

from bench.report import markdown
from bench.stats import Figure, Section, ratio, slope


def test_figure_reports_median_min_max_and_judges_its_target() -> None:
    figure = Figure("synth", "s", (3.0, 1.0, 2.0))
    assert (figure.median, figure.low, figure.high) == (2.0, 1.0, 3.0)
    assert figure.within(2.0, "≤ 2 s").met is True
    assert figure.within(1.5, "≤ 1.5 s").met is False
    assert Figure("failed", "s", ()).within(1.0, "≤ 1 s").met is None


def test_ratio_pairs_runs_by_index_and_keeps_a_failure_note() -> None:
    app, floor = Figure("app", "s", (2.0, 3.0)), Figure("floor", "s", (1.0, 2.0))
    assert ratio(app, floor, "app / floor").values == (2.0, 1.5)
    failed = ratio(Figure("app", "s", (), note="fails: too many resources"), floor, "app / floor")
    assert failed.values == () and failed.note == "fails: too many resources" and math.isnan(failed.median)


def test_slope_is_milliseconds_per_student_per_run() -> None:
    # run 1 costs 10 ms a student on top of 1 s; run 2 costs 20 ms; a failed size is left out.
    points = {
        1: Figure("1", "s", (1.01, 1.02)),
        11: Figure("11", "s", (1.11, 1.22)),
        100: Figure("100", "s", (), note="fails"),
    }
    assert slope(points, "per student").values == pytest.approx((10.0, 20.0))


def test_markdown_table_has_a_row_per_figure_and_escapes_pipes() -> None:
    section = Section("Synthesis", [Figure("a | b", "s", (1.0,), target="≤ 2 s", met=True)])
    meta = {"when": "now", "machine": "test", "runs": 1, "load_before": 0.1, "load_after": 0.2}
    text = markdown([section], meta)
    assert "| a / b | 1.00 | 1.00 | 1.00 | s | ≤ 2 s | yes |  |" in text
