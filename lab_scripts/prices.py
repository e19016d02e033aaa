"""What a leftover costs per hour, roughly: us-east-1 on-demand list prices in USD, for estimates only.

Bundled rather than fetched: the Price List API needs credentials and a network, and an audit must answer
offline and in the emulator. Prices change rarely and by little; the audit says they are estimates.
"""

from __future__ import annotations

from course.catalog import INSTANCES

HOURS_PER_MONTH = 730
# When this table was written; `lab_scripts.cost.refresh_prices` asks the Price List API for current ones.
AS_OF = "2026-11-25"
GIB = 1024**3

# SageMaker notebook instances, per hour while InService.
NOTEBOOK_USD_PER_HOUR = {
    "ml.t3.medium": 0.05, "ml.t3.large": 0.10, "ml.t3.xlarge": 0.20, "ml.t3.2xlarge": 0.399,
    "ml.t2.medium": 0.0464, "ml.t2.large": 0.0928, "ml.m5.xlarge": 0.23, "ml.m5.2xlarge": 0.461,
    "ml.c5.xlarge": 0.204, "ml.c5.2xlarge": 0.408, "ml.g4dn.xlarge": 0.7364, "ml.g5.xlarge": 1.408,
    "ml.p3.2xlarge": 3.825,
}
# Storage, per GB-month.
NOTEBOOK_STORAGE_GB_MONTH = 0.14  # SageMaker ML storage: billed while the notebook exists, running or stopped
EBS_GP3_GB_MONTH = 0.08
SNAPSHOT_GB_MONTH = 0.05  # charged on changed blocks; the full volume size is an upper bound
S3_STANDARD_GB_MONTH = 0.023
ECR_GB_MONTH = 0.10
LOGS_GB_MONTH = 0.03


def storage_per_hour(gb_month_price: float, size_bytes: float = 0, *, size_gb: float = 0) -> float:
    """Hourly cost of storing `size_bytes` (or `size_gb`) at a per-GB-month price."""
    return gb_month_price * (size_gb or size_bytes / GIB) / HOURS_PER_MONTH


def notebook_per_hour(instance_type: str, status: str, volume_gb: int) -> float | None:
    """A notebook bills its instance while InService (or starting) and its ML storage until deleted."""
    storage = storage_per_hour(NOTEBOOK_STORAGE_GB_MONTH, size_gb=volume_gb)
    if status in {"Stopped", "Failed", "Deleting"}:
        return storage
    rate = NOTEBOOK_USD_PER_HOUR.get(instance_type)
    return None if rate is None else rate + storage


def instance_per_hour(instance_type: str, state: str) -> float | None:
    """An EC2 instance bills per hour while running; its volumes are counted on their own."""
    if state not in {"pending", "running"}:
        return 0.0
    known = INSTANCES.get(instance_type)
    return None if known is None else known.usd_per_hour


def guard_prices(notebook_type: str, gpu_type: str) -> tuple[tuple[str, float], ...]:
    """USD per hour of the course's two machine types, for the guard's spend meter (its Lambda environment is
    limited to 4 KB and the function cannot import this module, so it gets just these two)."""
    known = INSTANCES.get(gpu_type)
    pairs = {notebook_type: NOTEBOOK_USD_PER_HOUR.get(notebook_type), gpu_type: known.usd_per_hour if known else None}
    return tuple(sorted((name, price) for name, price in pairs.items() if price is not None))
