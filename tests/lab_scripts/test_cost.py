"""The class cost estimate: hand-computed numbers, the idle-stop saving, and the Price List refresh (stubbed:
moto has no Pricing API, so a real client answers from botocore's Stubber with documents shaped like AWS's)."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lab_scripts.cost import (
    COLUMNS,
    PriceTable,
    PricingError,
    Usage,
    estimate,
    format_lines,
    refresh_prices,
)

ROUND = PriceTable({"ml.t3.medium": 0.10}, {"g4dn.xlarge": 1.00}, 0.10, 0.08, 0.02, "test prices")
COURSE = dict(notebook_type="ml.t3.medium", notebook_volume_gb=10, notebook_idle_minutes=60,
              gpu_type="g4dn.xlarge", gpu_volume_gb=100, gpu_idle_minutes=60)


def class_of(students: int = 2, weeks: float = 10, prices: PriceTable = ROUND, **overrides: Any) -> Any:
    return estimate(students=students, weeks=weeks, prices=prices, **{**COURSE, **overrides})


def test_hand_computed_class() -> None:
    # 6 h in 2 sessions of 3 h; the gap to the next session is (168 - 6) / 2 = 81 h. Half the sessions are
    # forgotten: with a 60-minute idle stop each adds 1 h (6 + 2 * 0.5 * 1 = 7 h/week), without it 81 h (87 h/week).
    # Storage: 10 weeks = 1680 h = 1680/730 months of 10 GB * 0.10 + 100 GB * 0.08 + 5 GB * 0.02 = 9.1 USD/month.
    result = class_of()
    storage = 9.1 * 1680 / 730
    assert result.with_idle_stop_usd == pytest.approx(2 * (7 * 10 * 0.10 + 7 * 10 * 1.00 + storage))
    assert result.without_idle_stop_usd == pytest.approx(2 * (87 * 10 * 0.10 + 87 * 10 * 1.00 + storage))
    assert result.saved_usd == pytest.approx(1760)
    by_item = {item.item: item for item in result.items}
    assert by_item["notebook instance"].per_student_usd == pytest.approx(7.0)
    assert by_item["GPU instance"].class_usd == pytest.approx(140.0)
    assert by_item["EBS gp3 volume"].per_student_usd == pytest.approx(8 * 1680 / 730)
    assert [item.lab for item in result.items] == ["LabSageMaker"] * 3 + ["LabDLAMI"] * 2
    assert "without idle stop 87.0 h/week, 870.00 USD per student" in by_item["GPU instance"].note
    assert result.prices_source == "test prices" and not result.unknown


def test_saving_is_positive_and_the_difference_of_the_totals() -> None:
    result = class_of(prices=PriceTable.bundled())
    assert result.saved_usd > 0
    assert result.saved_usd == pytest.approx(result.without_idle_stop_usd - result.with_idle_stop_usd)
    assert result.with_idle_stop_usd == pytest.approx(sum(item.class_usd for item in result.items))


def test_nobody_forgetting_means_nothing_to_save() -> None:
    assert class_of(usage=Usage(forgotten_share=0)).saved_usd == pytest.approx(0)


def test_a_longer_idle_stop_saves_less() -> None:
    assert class_of(gpu_idle_minutes=240).saved_usd < class_of(gpu_idle_minutes=15).saved_usd


def test_linear_in_students() -> None:
    one, thirty = class_of(students=1), class_of(students=30)
    assert thirty.with_idle_stop_usd == pytest.approx(30 * one.with_idle_stop_usd)
    assert thirty.saved_usd == pytest.approx(30 * one.saved_usd)
    assert [i.per_student_usd for i in thirty.items] == pytest.approx([i.per_student_usd for i in one.items])


def test_fractional_weeks_scale_linearly() -> None:
    assert class_of(weeks=2.5).with_idle_stop_usd == pytest.approx(class_of(weeks=10).with_idle_stop_usd / 4)


def test_unknown_type_is_reported_not_guessed() -> None:
    result = class_of(gpu_type="g6e.xlarge")
    gpu = next(item for item in result.items if item.item == "GPU instance")
    assert (gpu.per_student_usd, gpu.class_usd) == (0.0, 0.0)
    assert gpu.note == "unknown price for g6e.xlarge; refresh with --pricing"
    assert result.unknown == ["g6e.xlarge"]
    assert result.with_idle_stop_usd == pytest.approx(class_of(gpu_type=None).with_idle_stop_usd
                                                      + 2 * 100 * 0.08 * 1680 / 730)
    assert format_lines(result)[-1][-1] == "g6e.xlarge: refresh with --pricing"


def test_nan_price_counts_as_unknown() -> None:
    broken = PriceTable({"ml.t3.medium": math.nan}, {}, 0.10, 0.08, 0.02, "broken")
    result = class_of(prices=broken)
    assert result.unknown == ["ml.t3.medium", "g4dn.xlarge"] and math.isfinite(result.with_idle_stop_usd)


def test_no_gpu_skips_the_dlami_lab() -> None:
    result = class_of(gpu_type=None)
    assert {item.lab for item in result.items} == {"LabSageMaker"}
    assert result.saved_usd == pytest.approx(2 * 80 * 10 * 0.10)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"students": 0}, "students 0 must be a whole number of 1 or more"),
    ({"students": True}, "students True must be a whole number of 1 or more"),
    ({"weeks": 0}, "weeks 0 must be more than 0"),
    ({"weeks": -1.5}, "weeks -1.5 must be more than 0"),
    ({"weeks": math.inf}, "weeks inf must be more than 0"),
    ({"gpu_idle_minutes": -5}, "gpu_idle_minutes -5 must be 0 or more"),
])
def test_invalid_class_is_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        class_of(**kwargs)
    assert str(caught.value) == message


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"hours_per_week": -1}, "hours_per_week -1 must be between 0 and 168"),
    ({"hours_per_week": 200}, "hours_per_week 200 must be between 0 and 168"),
    ({"forgotten_share": 1.5}, "forgotten_share 1.5 must be between 0 and 1"),
    ({"sessions_per_week": 0}, "sessions_per_week 0 must be a whole number of 1 or more"),
    ({"s3_gb_per_student": -1}, "s3_gb_per_student -1 must be 0 or more"),
])
def test_invalid_usage_is_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Usage(**kwargs)
    assert str(caught.value) == message


def test_to_dict_is_json() -> None:
    result = class_of(gpu_type="g6e.xlarge")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["saved_usd"] == pytest.approx(result.saved_usd)
    assert data["items"][0]["lab"] == "LabSageMaker" and data["unknown"] == ["g6e.xlarge"]
    assert data["assumptions"] == result.assumptions


def test_rows_for_a_table() -> None:
    rows = format_lines(class_of())
    assert all(len(row) == len(COLUMNS) for row in rows)
    assert rows[-1][1:4] == ["idle stop saves", "880.00", "1760.00"]
    assert rows[0][:4] == ["LabSageMaker", "notebook instance", "7.00", "14.00"]


def test_bundled_table_covers_the_course_defaults() -> None:
    table = PriceTable.bundled()
    assert table.notebook_per_hour["ml.t3.medium"] == 0.05 and table.gpu_per_hour["g4dn.xlarge"] == 0.526
    assert table.source.startswith("bundled us-east-1 list prices (")


# --- Price List API ---------------------------------------------------------------------------------------------

def price_document(service: str, sku: str, attributes: dict[str, str], usd: str) -> str:
    """One PriceList entry as the API returns it: a JSON string with the product and its terms."""
    term = f"{sku}.JRTCKXETXF"
    return json.dumps({
        "product": {"productFamily": "Compute Instance" if service == "AmazonEC2" else "ML Instance",
                    "attributes": {"servicecode": service, "regionCode": "us-east-1",
                                   "location": "US East (N. Virginia)", **attributes}, "sku": sku},
        "serviceCode": service,
        "terms": {"OnDemand": {term: {
            "offerTermCode": "JRTCKXETXF", "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z", "termAttributes": {},
            "priceDimensions": {f"{term}.6YS6EN2CT7": {
                "unit": "Hrs", "pricePerUnit": {"USD": usd}, "beginRange": "0", "endRange": "Inf",
                "description": f"${usd} per On Demand hour", "rateCode": f"{term}.6YS6EN2CT7", "appliesTo": []}},
        }}},
        "version": "20261101000000", "publicationDate": "2026-11-01T00:00:00Z",
    })


def notebook_query(instance: str) -> dict[str, Any]:
    return {"ServiceCode": "AmazonSageMaker", "FormatVersion": "aws_v1", "Filters": [
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"},
        {"Type": "TERM_MATCH", "Field": "instanceName", "Value": instance}]}


def ec2_query(instance: str) -> dict[str, Any]:
    pairs = [("regionCode", "us-east-1"), ("instanceType", instance), ("operatingSystem", "Linux"),
             ("tenancy", "Shared"), ("preInstalledSw", "NA"), ("capacitystatus", "Used"), ("operation", "RunInstances")]
    return {"ServiceCode": "AmazonEC2", "FormatVersion": "aws_v1",
            "Filters": [{"Type": "TERM_MATCH", "Field": key, "Value": value} for key, value in pairs]}


@pytest.fixture
def pricing() -> Any:
    client = boto3.client("pricing", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def test_refresh_reads_every_page_and_keeps_what_is_not_answered(pricing: Any) -> None:
    client, stub = pricing
    studio = price_document("AmazonSageMaker", "STUDIO1", {
        "instanceName": "ml.t3.medium", "component": "Studio", "usagetype": "USE1-Studio:JupyterLab-ml.t3.medium"},
        "0.0400000000")
    notebook = price_document("AmazonSageMaker", "NOTEBK1", {
        "instanceName": "ml.t3.medium", "component": "Notebook", "usagetype": "USE1-Notebk:ml.t3.medium"},
        "0.0535000000")
    gpu = price_document("AmazonEC2", "BOX1", {"instanceType": "g4dn.xlarge", "operatingSystem": "Linux",
                                               "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used",
                                               "usagetype": "BoxUsage:g4dn.xlarge", "operation": "RunInstances"},
                         "0.5500000000")
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [studio], "NextToken": "page-2"},
                      notebook_query("ml.t3.medium"))
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [notebook]},
                      {**notebook_query("ml.t3.medium"), "NextToken": "page-2"})
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [gpu]}, ec2_query("g4dn.xlarge"))
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []}, ec2_query("g5.xlarge"))
    base = PriceTable.bundled()

    table = refresh_prices(client, "us-east-1", ["ml.t3.medium"], ["g4dn.xlarge", "g5.xlarge", "g4dn.xlarge"],
                           base=base, today=dt.date(2026, 11, 25))

    assert table.notebook_per_hour["ml.t3.medium"] == 0.0535  # the notebook's price, not Studio's cheaper one
    assert table.gpu_per_hour["g4dn.xlarge"] == 0.55
    assert table.gpu_per_hour["g5.xlarge"] == base.gpu_per_hour["g5.xlarge"]
    assert table.ebs_gb_month == base.ebs_gb_month
    assert table.source.startswith("AWS Price List API, us-east-1, 2026-11-25; storage: bundled us-east-1")
    assert table.source.endswith(": g5.xlarge")
    assert base.gpu_per_hour["g4dn.xlarge"] == 0.526  # the base table is not changed


def test_refresh_failure_is_one_line(pricing: Any) -> None:
    client, stub = pricing
    stub.add_client_error("get_products", "AccessDeniedException", "User is not authorized to perform:\n"
                          "pricing:GetProducts", expected_params=ec2_query("g4dn.xlarge"))
    with pytest.raises(PricingError) as caught:
        refresh_prices(client, "us-east-1", [], ["g4dn.xlarge"], base=PriceTable.bundled())
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("Price List API (AmazonEC2, g4dn.xlarge): An error occurred "
                                        "(AccessDeniedException)")


def test_refresh_skips_malformed_documents(pricing: Any) -> None:
    client, stub = pricing
    stub.add_response("get_products", {"PriceList": ["not json", json.dumps({"terms": {}})]},
                      ec2_query("g4dn.xlarge"))
    table = refresh_prices(client, "us-east-1", [], ["g4dn.xlarge"], base=PriceTable.bundled())
    assert table.gpu_per_hour["g4dn.xlarge"] == 0.526 and "g4dn.xlarge" in table.source


def test_unreachable_endpoint_is_one_line() -> None:
    from botocore.exceptions import EndpointConnectionError

    class Offline:
        def get_paginator(self, name: str) -> Any:
            raise EndpointConnectionError(endpoint_url="https://api.pricing.us-east-1.amazonaws.com/")

    with pytest.raises(PricingError, match=r"^Price List API \(AmazonSageMaker, ml.t3.medium\): Could not connect"):
        refresh_prices(Offline(), "eu-west-1", ["ml.t3.medium"], [], base=PriceTable.bundled())
