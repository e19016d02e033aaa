"""What a class will cost before it is deployed, and how much of that the idle stop saves.

Instructors set the budget and the idle minutes before the first session; a rough, stated model answers
"is this affordable?" better than a precise one nobody can check. Every guess is a `Usage` field and is
repeated in the estimate's `assumptions`, so a printed number always comes with its premises.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lab_scripts import prices as bundled_prices
from course.catalog import INSTANCES

HOURS_PER_WEEK = 168
# A notebook instance's usage type, e.g. "USE1-Notebk:ml.t3.medium"; Studio and training bill under other names.
NOTEBOOK_USAGE = re.compile(r"(^|-)Notebk:")
# Plain Linux on-demand, shared tenancy: without these, Windows, SQL Server and reservation SKUs answer too.
EC2_LINUX = [("operatingSystem", "Linux"), ("tenancy", "Shared"), ("preInstalledSw", "NA"),
             ("capacitystatus", "Used"), ("operation", "RunInstances")]
COLUMNS = ("lab", "item", "per student (USD)", "class (USD)", "note")


class PricingError(RuntimeError):
    """The Price List API could not be asked; str() is one line."""


def _number(label: str, value: float, low: float, high: float = math.inf, *, whole: bool = False) -> None:
    """The one check of numeric inputs: a finite number in range, or a one-line ValueError naming it."""
    kind = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not (math.isfinite(value) and low <= value <= high):
        bound = f"between {low:g} and {high:g}" if high < math.inf else f"{low:g} or more"
        raise ValueError(f"{label} {value!r} must be {'a whole number of ' if whole else ''}{bound}")


@dataclass(frozen=True)
class Usage:
    """How students use the labs: the model's only guesses. The idle minutes come from the course file.

    A machine runs `hours_per_week` in `sessions_per_week` sessions. A student ends a session with a stop, or
    forgets to (`forgotten_share`): then idle stop ends it after the idle minutes, and without idle stop it runs
    until the next session starts.
    """

    hours_per_week: float = 6.0  # hands-on hours a student uses each machine per week
    sessions_per_week: int = 2
    forgotten_share: float = 0.5
    s3_gb_per_student: float = 5.0  # the lab bucket: a course's datasets and outputs are small

    def __post_init__(self) -> None:
        _number("hours_per_week", self.hours_per_week, 0, HOURS_PER_WEEK)
        _number("sessions_per_week", self.sessions_per_week, 1, whole=True)
        _number("forgotten_share", self.forgotten_share, 0, 1)
        _number("s3_gb_per_student", self.s3_gb_per_student, 0)

    @property
    def gap_hours(self) -> float:
        """From the end of one session to the start of the next: how long a forgotten machine runs on."""
        return (HOURS_PER_WEEK - self.hours_per_week) / self.sessions_per_week

    def running_hours_per_week(self, idle_minutes: float | None) -> float:
        """Billed hours per machine and week; `idle_minutes` None means no idle stop."""
        tail = self.gap_hours if idle_minutes is None else min(idle_minutes / 60, self.gap_hours)
        return self.hours_per_week + self.sessions_per_week * self.forgotten_share * tail


@dataclass(frozen=True)
class PriceTable:
    """USD per hour (instances) and per GB-month (storage), with where they came from."""

    notebook_per_hour: Mapping[str, float]
    gpu_per_hour: Mapping[str, float]
    notebook_storage_gb_month: float
    ebs_gb_month: float
    s3_gb_month: float
    source: str

    @classmethod
    def bundled(cls) -> PriceTable:
        """The offline table (lab_scripts.prices): estimates work without credentials or a network."""
        table = bundled_prices
        return cls(dict(table.NOTEBOOK_USD_PER_HOUR), {name: gpu.usd_per_hour for name, gpu in INSTANCES.items()},
                   table.NOTEBOOK_STORAGE_GB_MONTH, table.EBS_GP3_GB_MONTH, table.S3_STANDARD_GB_MONTH,
                   f"bundled us-east-1 list prices ({table.AS_OF})")


def _hourly_usd(documents: Iterable[str], notebooks: bool) -> float | None:
    """The lowest positive on-demand hourly price among PriceList documents; the plain offer is the cheapest."""
    found: list[float] = []
    for text in documents:
        try:
            product = json.loads(text)
            if notebooks and not NOTEBOOK_USAGE.search(product["product"]["attributes"].get("usagetype", "")):
                continue
            for term in product["terms"]["OnDemand"].values():
                found += [float(dimension["pricePerUnit"]["USD"]) for dimension in term["priceDimensions"].values()
                          if dimension.get("unit", "Hrs").lower().startswith("hr")]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # one odd document must not hide the others
    usable = [usd for usd in found if math.isfinite(usd) and usd > 0]
    return min(usable) if usable else None


def refresh_prices(pricing_client: Any, region: str, notebook_types: Iterable[str], gpu_types: Iterable[str], *,
                   base: PriceTable, today: dt.date | None = None) -> PriceTable:
    """Current on-demand prices in `region` for the course's types; everything else stays as in `base`.

    The Price List API has endpoints only in us-east-1, ap-south-1 and eu-central-1 (each prices every region),
    so the caller makes the client there: `boto3.client("pricing", region_name="us-east-1")`. Types the API does
    not answer keep their `base` price, and the source says so; storage prices are not asked for.
    """
    queries = [("notebook", name, "AmazonSageMaker", [("instanceName", name)])
               for name in dict.fromkeys(notebook_types)]
    queries += [("gpu", name, "AmazonEC2", [("instanceType", name), *EC2_LINUX]) for name in dict.fromkeys(gpu_types)]
    found: dict[str, dict[str, float]] = {"notebook": {}, "gpu": {}}
    kept: list[str] = []
    for kind, name, service, filters in queries:
        terms = [{"Type": "TERM_MATCH", "Field": key, "Value": value}
                 for key, value in [("regionCode", region), *filters]]
        try:
            pages = pricing_client.get_paginator("get_products").paginate(
                ServiceCode=service, FormatVersion="aws_v1", Filters=terms)
            usd = _hourly_usd((doc for page in pages for doc in page.get("PriceList", [])), kind == "notebook")
        except (ClientError, BotoCoreError) as exc:
            raise PricingError(f"Price List API ({service}, {name}): {' '.join(str(exc).split())}") from None
        if usd is None:
            kept.append(name)
        else:
            found[kind][name] = usd
    source = f"AWS Price List API, {region}, {(today or dt.date.today()).isoformat()}; storage: {base.source}"
    if kept:
        source += f"; not answered, from {base.source}: {', '.join(kept)}"
    return replace(base, notebook_per_hour={**base.notebook_per_hour, **found["notebook"]},
                   gpu_per_hour={**base.gpu_per_hour, **found["gpu"]}, source=source)


@dataclass(frozen=True)
class LineItem:
    lab: str
    item: str
    per_student_usd: float  # 0 where the price is unknown: the note says so and the estimate lists the type
    class_usd: float
    note: str


@dataclass(frozen=True)
class CostEstimate:
    students: int
    weeks: float
    items: list[LineItem]  # with idle stop, as deployed
    with_idle_stop_usd: float
    without_idle_stop_usd: float
    prices_source: str
    assumptions: list[str]
    unknown: list[str] = field(default_factory=list)  # types without a price, left out of both totals

    @property
    def saved_usd(self) -> float:
        return self.without_idle_stop_usd - self.with_idle_stop_usd

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for `--json`."""
        return {**asdict(self), "saved_usd": self.saved_usd}


def estimate(*, students: int, weeks: float, notebook_type: str | None, notebook_volume_gb: int,
             notebook_idle_minutes: int, gpu_type: str | None, gpu_volume_gb: int, gpu_idle_minutes: int,
             prices: PriceTable, usage: Usage = Usage()) -> CostEstimate:
    """The class's bill for `weeks`, with the idle stop as deployed and without it.

    Machines bill `usage.running_hours_per_week`; storage (notebook ML storage, the GPU instance's EBS volume,
    the lab bucket) bills for the whole course, running or stopped. A type None skips its lab.
    """
    _number("students", students, 1, whole=True)
    if isinstance(weeks, bool) or not isinstance(weeks, (int, float)) or not (math.isfinite(weeks) and weeks > 0):
        raise ValueError(f"weeks {weeks!r} must be more than 0")
    for label, number in (("notebook_volume_gb", notebook_volume_gb), ("notebook_idle_minutes", notebook_idle_minutes),
                          ("gpu_volume_gb", gpu_volume_gb), ("gpu_idle_minutes", gpu_idle_minutes)):
        _number(label, number, 0)
    months = weeks * HOURS_PER_WEEK / bundled_prices.HOURS_PER_MONTH
    items: list[LineItem] = []
    unknown: list[str] = []
    extra_without = 0.0  # per student: what the machines add without idle stop

    def add(lab: str, item: str, per_student: float, note: str) -> None:
        items.append(LineItem(lab, item, per_student, per_student * students, note))

    def machine(lab: str, item: str, kind: str, rate: float | None, idle: int) -> None:
        nonlocal extra_without
        if rate is None or not math.isfinite(rate) or rate < 0:
            unknown.append(kind)
            add(lab, item, 0.0, f"unknown price for {kind}; refresh with --pricing")
            return
        with_h, without_h = usage.running_hours_per_week(idle), usage.running_hours_per_week(None)
        extra_without += (without_h - with_h) * weeks * rate
        add(lab, item, with_h * weeks * rate, f"{kind}: {with_h:.1f} h/week at {rate:g} USD/h; without idle stop "
            f"{without_h:.1f} h/week, {without_h * weeks * rate:.2f} USD per student")

    def storage(lab: str, item: str, gb: float, gb_month: float) -> None:
        add(lab, item, gb * gb_month * months, f"{gb:g} GB at {gb_month:g} USD/GB-month for {months:.2f} months")

    if notebook_type is not None:
        machine("LabSageMaker", "notebook instance", notebook_type, prices.notebook_per_hour.get(notebook_type),
                notebook_idle_minutes)
        storage("LabSageMaker", "notebook ML storage", notebook_volume_gb, prices.notebook_storage_gb_month)
        storage("LabSageMaker", "lab bucket (S3)", usage.s3_gb_per_student, prices.s3_gb_month)
    if gpu_type is not None:
        machine("LabDLAMI", "GPU instance", gpu_type, prices.gpu_per_hour.get(gpu_type), gpu_idle_minutes)
        storage("LabDLAMI", "EBS gp3 volume", gpu_volume_gb, prices.ebs_gb_month)
    with_usd = sum(item.class_usd for item in items)
    assumptions = [
        f"each student uses each machine {usage.hours_per_week:g} h a week in {usage.sessions_per_week} sessions",
        f"{usage.forgotten_share:.0%} of sessions end without a stop: with idle stop the machine stops after the "
        f"course's idle minutes (notebook {notebook_idle_minutes}, GPU {gpu_idle_minutes}), without it it runs "
        f"until the next session ({usage.gap_hours:g} h later)",
        "storage (notebook ML storage, EBS volume, lab bucket) bills for the whole course, running or stopped",
        f"lab bucket: {usage.s3_gb_per_student:g} GB per student in S3 Standard",
        "on-demand list prices without free tier or tax; data transfer, logs, snapshots, container images and "
        "Rekognition calls are not counted",
    ]
    return CostEstimate(students, weeks, items, with_usd, with_usd + extra_without * students, prices.source,
                        assumptions, unknown)


def format_lines(result: CostEstimate) -> list[list[str]]:
    """Rows under COLUMNS for a table (rich or plain): the items, then the totals and the saving."""
    rows = [[i.lab, i.item, f"{i.per_student_usd:.2f}", f"{i.class_usd:.2f}", i.note] for i in result.items]
    for label, usd, note in (
        ("total with idle stop", result.with_idle_stop_usd, f"{result.students} students, {result.weeks:g} weeks"),
        ("total without idle stop", result.without_idle_stop_usd, "forgotten machines run until the next session"),
        ("idle stop saves", result.saved_usd, f"prices: {result.prices_source}"),
    ):
        rows.append(["", label, f"{usd / result.students:.2f}", f"{usd:.2f}", note])
    if result.unknown:
        rows.append(["", "not priced", "", "", f"{', '.join(result.unknown)}: refresh with --pricing"])
    return rows
