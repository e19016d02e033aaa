"""The benchmark report: a rich table for the terminal and a Markdown table for the README."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from bench.stats import Figure, Section

HEADERS = ["figure", "median", "min", "max", "unit", "target", "met", "note"]
# Units whose numbers read better with fewer digits.
DIGITS = {"s": 2, "x": 2, "ms/student": 1, "calls": 0}
# A note (e.g. why a synthesis failed) is cut here in tables; the JSON keeps all of it.
NOTE_CHARS = 110


def _number(value: float, unit: str) -> str:
    return "n/a" if value != value else f"{value:.{DIGITS.get(unit, 2)}f}"  # NaN: nothing measured


def _met(figure: Figure) -> str:
    return {True: "yes", False: "NO", None: "-" if not figure.target else "n/a"}[figure.met]


def _short(note: str) -> str:
    return note if len(note) <= NOTE_CHARS else note[:NOTE_CHARS - 1].rstrip() + "…"


def rows(section: Section) -> list[list[str]]:
    return [
        [figure.name, _number(figure.median, figure.unit), _number(figure.low, figure.unit),
         _number(figure.high, figure.unit), figure.unit, figure.target, _met(figure), _short(figure.note)]
        for figure in section.figures
    ]


def print_table(console: Console, sections: list[Section], runs: int) -> None:
    for section in sections:
        table = Table(title=f"{section.title} (runs: {runs})", title_justify="left")
        for header in HEADERS:
            table.add_column(header, justify="right" if header in {"median", "min", "max"} else "left")
        for row in rows(section):
            table.add_row(*row)
        console.print(table)


def markdown(sections: list[Section], meta: dict[str, Any]) -> str:
    lines = [f"Measured {meta['when']} on {meta['machine']}, {meta['runs']} run(s) each, load average "
             f"{meta['load_before']} before / {meta['load_after']} after.", ""]
    for section in sections:
        lines += [f"**{section.title}**", "", "| " + " | ".join(HEADERS) + " |",
                  "|" + "---|" * len(HEADERS)]
        lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows(section)]
        lines.append("")
    return "\n".join(lines)
