"""The validation job on a mixed data set: every kind of rule, exact quarantine and warning rows,
reconciliation, corrections, Data Docs, and a failed batch leaving silver and gold untouched.

Bronze is written by the project's own decode path from encoded events (no broker needed here:
the Kafka path is covered by the pipeline integration test)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pyspark.sql import functions as F

from readiness.contracts.encoding import encode
from readiness.lake import store
from readiness.lake.tables import BRONZE_REPORTS, GOLD_INDEX, GOLD_VALUES, QUARANTINE, SILVER_VALUES, WARNINGS
from readiness.pipeline.aggregate import aggregate_period
from readiness.pipeline.validate import validate_period
from readiness.quality.gate import QualityGateError
from readiness.settings import load_settings
from readiness.transforms.decode import decode_messages, split_decoded

pytestmark = pytest.mark.slow

PERIOD = "2026Q3"
ON_TIME = datetime(2026, 9, 18, 3, 0, tzinfo=timezone.utc)


def value(code, numerator=None, denominator=None, amount=None, unit=None):
    return {"indicator_code": code, "numerator": numerator, "denominator": denominator, "value": amount, "unit": unit}


def report(n, province, unit, kind, values, revision=0, submitted_at=ON_TIME):
    return {"event_id": f"00000000-0000-4000-8000-{n:012d}", "province_code": province,
            "reporting_unit": {"code": unit, "kind": kind, "name": None}, "report_type": "QUARTERLY",
            "period": PERIOD, "values": values, "revision": revision, "submitted_at": submitted_at,
            "source_system": "test"}


def write_bronze(spark, settings, reports, batch_id, first_offset=0):
    rows = [("t", 0, first_offset + i, ON_TIME, r["province_code"], bytearray(encode(r))) for i, r in enumerate(reports)]
    raw = spark.createDataFrame(rows, "topic string, partition int, offset long, kafka_timestamp timestamp, "
                                      "kafka_key string, raw_value binary")
    bronze, _, dead = split_decoded(decode_messages(raw, F.lit(ON_TIME)))
    assert dead.count() == 0
    store.append_once(bronze, settings, BRONZE_REPORTS, "test", batch_id, ["period_id"])


MIXED = [
    report(1, "38", "38.S01", "AGENCY", [value("computers_per_100_staff", 90, 100)]),
    report(2, "25", "25", "PROVINCE", [value("services_online_level2", 50, 100), value("services_online_level3", 60, 100)]),
    report(3, "38", "38.S03", "AGENCY", [value("agencies_using_digital_signatures", 1, 1),
                                         value("agencies_on_document_software", 0, 0)]),
    report(4, "17", "17.S01", "AGENCY", [value("computers_per_100_staff", 50, 100)]),  # Hòa Bình's code in 2026
    report(5, "25", "38.S01", "AGENCY", [value("computers_per_100_staff", 50, 100)]),  # a unit of another province
    report(6, "01", "01.S05", "AGENCY", [value("computers_per_100_staff", 400, 100)]),  # above the catalogue range
    report(7, "01", "01.S06", "AGENCY", [value("it_staff", amount=-2, unit="count")]),
    report(8, "04", "04.S07", "AGENCY", [value("computers_per_100_staff", 80, 100)],
           submitted_at=datetime(2026, 6, 1, tzinfo=timezone.utc)),  # before the period opens
    report(1, "38", "38.S01", "AGENCY", [value("computers_per_100_staff", 90, 100)]),  # delivered twice
    report(10, "04", "04.S08", "AGENCY", [value("computers_per_household", 1, 2)]),
    report(11, "38", "38.S09", "AGENCY", [value("agencies_with_cio", 2, 1)]),
    report(12, "38", "38.S09", "AGENCY", [value("agencies_with_cio", 1, 1)], revision=1),  # the correction
]


@pytest.fixture(scope="module")
def mixed(spark, tmp_path_factory):
    settings = load_settings(env="ci", var_dir=tmp_path_factory.mktemp("validate"))
    write_bronze(spark, settings, MIXED, 0)
    return settings, validate_period(settings, PERIOD)


def test_counts_reconcile(mixed):
    _, counts = mixed
    assert (counts["events_in"], counts["events_accepted"], counts["events_quarantined"]) == (12, 3, 9)
    assert counts["events_in"] == counts["events_accepted"] + counts["events_quarantined"]


def test_every_rule_quarantines_exactly_its_rows(mixed, spark):
    settings, _ = mixed
    rows = store.read(spark, settings, QUARANTINE).select(
        F.substring("event_id", -2, 2), "province_code", "unit_code", "indicator_code", "rule", "observed_value",
        "severity", "status").collect()
    pair = "expect_column_pair_values_a_to_be_greater_than_b"
    in_set = "expect_column_values_to_be_in_set"
    assert sorted(tuple(r) for r in rows) == sorted([
        ("01", "38", "38.S01", None, "duplicate_event_id", "partition 0 offset 8", "high", "resolved"),
        ("02", "25", "25", None, "validation_rule:services_level3_within_level2", "left=60.0, right=50.0", "high", "open"),
        ("04", "17", "17.S01", "computers_per_100_staff", f"{in_set}:province_code", "17", "high", "open"),
        ("04", "17", "17.S01", "computers_per_100_staff", f"{in_set}:unit_key", "17|17.S01", "high", "open"),
        ("05", "25", "38.S01", "computers_per_100_staff", f"{in_set}:unit_key", "25|38.S01", "high", "open"),
        ("06", "01", "01.S05", "computers_per_100_staff", f"{pair}:valid_max,reported_value",
         "valid_max=300.0, reported_value=400.0", "high", "open"),
        ("07", "01", "01.S06", "it_staff", f"{pair}:reported_value,valid_min", "reported_value=-2.0, valid_min=0.0",
         "high", "open"),
        ("08", "04", "04.S07", "computers_per_100_staff", f"{pair}:submitted_at,period_opens_at",
         "submitted_at=2026-06-01T00:00:00, period_opens_at=2026-06-14T17:00:00", "high", "open"),
        ("10", "04", "04.S08", "computers_per_household", f"{in_set}:indicator_code", "computers_per_household",
         "high", "open"),
        ("11", "38", "38.S09", "agencies_with_cio", f"{pair}:numerator_limit,numerator",
         "numerator_limit=1.0, numerator=2.0", "high", "superseded"),
        # 2 of 1 agencies is also 200 %, above the catalogue's 100.
        ("11", "38", "38.S09", "agencies_with_cio", f"{pair}:valid_max,reported_value",
         "valid_max=100.0, reported_value=200.0", "high", "superseded"),
    ])


def test_medium_rules_only_warn_and_the_report_is_accepted(mixed, spark):
    settings, _ = mixed
    warnings = store.read(spark, settings, WARNINGS).select(
        F.substring("event_id", -2, 2), "rule", "observed_value", "severity").collect()
    assert [tuple(r) for r in warnings] == [
        ("03", "validation_rule:signature_agencies_within_agencies", "left=1.0, right=0.0", "medium")]
    accepted = {r.event_id[-2:] for r in store.read(spark, settings, SILVER_VALUES).select("event_id").distinct().collect()}
    assert accepted == {"01", "03", "12"}


def test_data_docs_built_for_the_run(mixed):
    settings, _ = mixed
    index = (settings.var_dir / "data_docs" / "index.html").read_text(encoding="utf-8")
    assert "silver_report_values" in index and "bronze_report_events" in index


def test_a_failed_batch_changes_neither_silver_nor_gold(spark, tmp_path_factory):
    settings = load_settings(env="ci", var_dir=tmp_path_factory.mktemp("failing"))
    good = [report(100 + n, "38", f"38.S{n:02d}", "AGENCY", [value("agencies_with_cio", 1, 1)]) for n in range(1, 5)]
    write_bronze(spark, settings, good, 0)
    validate_period(settings, PERIOD)
    aggregate_period(settings, PERIOD)
    tables = (SILVER_VALUES, QUARANTINE, GOLD_VALUES, GOLD_INDEX)
    before = {t: store.version(spark, settings, t) for t in tables}

    # Six of Thanh Hóa's ten reports now break a row rule: over the policy's 50 %, so the batch fails.
    bad = [report(200 + n, "38", f"38.S{n:02d}", "AGENCY", [value("agencies_with_cio", 3, 1)], revision=1)
           for n in range(5, 11)]
    write_bronze(spark, settings, bad, 1, first_offset=100)
    with pytest.raises(QualityGateError, match="province 38: 6 of 10 reports"):
        validate_period(settings, PERIOD)
    assert {t: store.version(spark, settings, t) for t in tables} == before


def test_quarantine_lists_what_each_province_must_fix(mixed):
    from readiness.analyst.views import format_quarantine, open_quarantine

    settings, _ = mixed
    # Thanh Hóa corrected its report (revision 1 supersedes 0) and its repeated delivery needs nothing.
    assert open_quarantine(settings, "38") == []
    assert [r["status"] for r in open_quarantine(settings, "38", include_closed=True)] == [
        "resolved", "superseded", "superseded"]
    phu_tho = open_quarantine(settings, "25")
    assert sorted({r["event_id"][-2:] for r in phu_tho}) == ["02", "05"]
    text = format_quarantine(phu_tho)
    assert "Province 25: 2 report(s) to correct" in text
    assert "validation_rule:services_level3_within_level2" in text and "left=60.0, right=50.0" in text
