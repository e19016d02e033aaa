"""Figures the benchmarks report: every number is a median of several runs with its min and max, because
the machines this runs on are shared and one run says little."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One reported number. `values` keeps every run so a reader can judge the spread themselves."""

    name: str
    unit: str
    values: tuple[float, ...]
    target: str = ""
    # None: no target, or the target could not be measured (see `note`).
    met: bool | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def low(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def high(self) -> float:
        return max(self.values) if self.values else float("nan")

    def within(self, limit: float, text: str) -> Figure:
        """This figure judged against a target: met when the median is at most `limit` (same unit)."""
        return replace(self, target=text, met=self.median <= limit if self.values else None)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(median=self.median, min=self.low, max=self.high, values=list(self.values))
        return data


@dataclass
class Section:
    """A group of figures from one benchmark, plus facts worth keeping next to them (sizes, call counts)."""

    title: str
    figures: list[Figure] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one call, and what it returned."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def ratio(a: Figure, b: Figure, name: str) -> Figure:
    """a/b as a figure of run-wise ratios, so a load spike hits both sides of one pair.

    Runs are paired by index (the benchmarks interleave a and b); a side that failed leaves no pairs.
    """
    pairs = tuple(x / y for x, y in zip(a.values, b.values))
    return Figure(name, "x", pairs, note=a.note or b.note)


def slope(points: dict[int, Figure], name: str, **kwargs: Any) -> Figure:
    """Least-squares slope of seconds over class size, in ms per student: what one more student costs.

    One slope per run index (run i of every size), so min/max show how stable the marginal cost is.
    """
    sizes = [size for size, figure in points.items() if figure.values]
    runs = min((len(points[size].values) for size in sizes), default=0)
    slopes = tuple(
        1000 * statistics.linear_regression(sizes, [points[size].values[i] for size in sizes]).slope
        for i in range(runs)
    ) if len(sizes) >= 2 else ()
    return Figure(name, "ms/student", slopes, **kwargs)
