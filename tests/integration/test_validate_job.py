"""The validation job on a mixed data set: every kind of rule, exact quarantine and warning rows,
reconciliation, corrections, Data Docs; a province over its quarantine share held back while the
others publish; re-deliveries; non-finite numbers; a failed batch writing nothing.

Bronze is written by the project's own decode path from encoded events (no broker needed here:
the Kafka path is covered by the pipeline integration test)."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest
from pyspark.sql import functions as F

from readiness.contracts.encoding import encode
from readiness.lake import store
from readiness.lake.tables import BRONZE_REPORTS, QUARANTINE, SILVER_VALUES, VALIDATION_RUNS, WARNINGS
from readiness.orchestration.tasks import validate
from readiness.pipeline import validate as validate_job
from readiness.pipeline.validate import validate_period
from readiness.quality.gate import QualityGateError
from readiness.quality.policy import load_policy
from readiness.settings import load_settings
from readiness.transforms.decode import decode_messages, split_decoded
from support.webhook import RecordingWebhook

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


def write_bronze(spark, settings, reports, first_offset=0):
    rows = [("t", 0, first_offset + i, ON_TIME, r["province_code"], bytearray(encode(r))) for i, r in enumerate(reports)]
    raw = spark.createDataFrame(rows, "topic string, partition int, offset long, kafka_timestamp timestamp, "
                                      "kafka_key string, raw_value binary")
    bronze, _, dead = split_decoded(decode_messages(raw, F.lit(ON_TIME)))
    assert dead.count() == 0
    store.insert_new(bronze, settings, BRONZE_REPORTS, ("topic", "partition", "offset"), ["period_id"])


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
    report(1, "38", "38.S01", "AGENCY", [value("computers_per_100_staff", 90, 100)]),  # delivered twice: dropped
    report(10, "04", "04.S08", "AGENCY", [value("computers_per_household", 1, 2)]),
    report(11, "38", "38.S09", "AGENCY", [value("agencies_with_cio", 2, 1)]),
    report(12, "38", "38.S09", "AGENCY", [value("agencies_with_cio", 1, 1)], revision=1),  # the correction
]


@pytest.fixture(scope="module")
def mixed(spark, tmp_path_factory):
    settings = load_settings(env="ci", var_dir=tmp_path_factory.mktemp("validate"))
    write_bronze(spark, settings, MIXED)
    return settings, validate_period(settings, PERIOD)


def reconciles(counts):
    return counts["events_in"] == (counts["events_accepted"] + counts["events_quarantined"]
                                   + counts["events_held_back"] + counts["events_duplicate"])


def test_counts_reconcile(mixed):
    _, counts = mixed
    assert (counts["events_in"], counts["events_accepted"], counts["events_quarantined"], counts["events_held_back"],
            counts["events_duplicate"], counts["held_back_provinces"]) == (12, 3, 8, 0, 1, [])
    assert reconciles(counts)


def test_every_rule_quarantines_exactly_its_rows(mixed, spark):
    settings, _ = mixed
    rows = store.read(spark, settings, QUARANTINE).select(
        F.substring("event_id", -2, 2), "province_code", "unit_code", "indicator_code", "rule", "observed_value",
        "severity", "status").collect()
    pair = "expect_column_pair_values_a_to_be_greater_than_b"
    in_set = "expect_column_values_to_be_in_set"
    assert sorted(tuple(r) for r in rows) == sorted([
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


def test_a_failed_batch_writes_nothing(spark, tmp_path_factory, monkeypatch):
    settings = load_settings(env="ci", var_dir=tmp_path_factory.mktemp("failing"))
    strict = dataclasses.replace(load_policy(), validation_rule_actions={"high": "fail_batch", "medium": "warn",
                                                                          "low": "warn"})
    monkeypatch.setattr(validate_job, "load_policy", lambda: strict)
    write_bronze(spark, settings, [MIXED[0], MIXED[1]])  # report 2 breaks a high validation rule
    with pytest.raises(QualityGateError, match="services_level3_within_level2"):
        validate_period(settings, PERIOD)
    assert {t: store.version(spark, settings, t) for t in (SILVER_VALUES, QUARANTINE, WARNINGS, VALIDATION_RUNS)} == {
        SILVER_VALUES: None, QUARANTINE: None, WARNINGS: None, VALIDATION_RUNS: None}


def test_quarantine_lists_what_each_province_must_fix(mixed):
    from readiness.analyst.views import format_quarantine, open_quarantine

    settings, _ = mixed
    # Thanh Hóa corrected its report (revision 1 supersedes 0); its repeated delivery was dropped.
    assert open_quarantine(settings, "38") == []
    assert [r["status"] for r in open_quarantine(settings, "38", include_closed=True)] == ["superseded", "superseded"]
    phu_tho = open_quarantine(settings, "25")
    assert sorted({r["event_id"][-2:] for r in phu_tho}) == ["02", "05"]
    text = format_quarantine(phu_tho)
    assert "Province 25: 2 report(s) to correct" in text
    assert "validation_rule:services_level3_within_level2" in text and "left=60.0, right=50.0" in text


# --------------------------------------------------------------------------- a province held back

CIO = [value("agencies_with_cio", 1, 1)]
PUBLISHED = [report(100 + n, "38", f"38.S{n:02d}", "AGENCY", CIO) for n in range(1, 5)] + [
    report(105, "25", "25.S01", "AGENCY", [value("computers_per_100_staff", 80, 100)])]
LATER = [
    # Thanh Hóa: 8 reports from units it has not registered, a correction and a new report; 8 of its
    # 14 reports are then quarantined, over the policy's 50 %: held back.
    *[report(200 + n, "38", f"38.X{n:02d}", "AGENCY", CIO) for n in range(1, 9)],
    report(209, "38", "38.S01", "AGENCY", [value("agencies_with_cio", 0, 1)], revision=1),
    report(210, "38", "38.S05", "AGENCY", CIO),
    report(211, "25", "25.S02", "AGENCY", [value("computers_per_100_staff", 60, 100)]),
    report(212, "01", "01.S01", "AGENCY", [value("computers_per_100_staff", 50, float("inf"))]),
    report(213, "04", "04.S01", "AGENCY", [value("it_staff", amount=float("nan"), unit="count")]),
    PUBLISHED[4],  # resent with the same bytes after a broker failure: dropped as a duplicate
    report(211, "25", "25.S03", "AGENCY", [value("computers_per_100_staff", 70, 100)]),  # 211 reused: other content
]


def silver_reports(spark, settings):
    return sorted((r.event_id[-3:], r.province_code, r.unit_code, r.revision) for r in
                  store.read(spark, settings, SILVER_VALUES).select("event_id", "province_code", "unit_code",
                                                                    "revision").distinct().collect())


@pytest.fixture(scope="module")
def held(spark, tmp_path_factory):
    with RecordingWebhook() as hook:
        settings = load_settings(env="ci", var_dir=tmp_path_factory.mktemp("held"), webhook_url=hook.url)
        write_bronze(spark, settings, PUBLISHED)
        first = validate(settings, PERIOD)
        before = silver_reports(spark, settings)
        write_bronze(spark, settings, LATER, first_offset=100)
        result = validate(settings, PERIOD)
        return settings, first, before, result, hook.bodies()


def test_a_held_province_keeps_its_published_rows_while_the_others_publish(held, spark):
    settings, first, before, result, _ = held
    assert first["held_back_provinces"] == [] and first["held_back_alert"] is None
    assert before == [("101", "38", "38.S01", 0), ("102", "38", "38.S02", 0), ("103", "38", "38.S03", 0),
                      ("104", "38", "38.S04", 0), ("105", "25", "25.S01", 0)]
    # Thanh Hóa's rows stay as published (38.S01 at revision 0); Phú Thọ's new report is published.
    assert silver_reports(spark, settings) == before + [("211", "25", "25.S02", 0)]
    assert result["held_back_provinces"] == [{"province_code": "38", "events": 14, "quarantined": 8, "share": 0.5714,
                                              "max_share": 0.5, "events_held_back": 2}]


def test_counts_reconcile_with_held_back_and_duplicate_events(held):
    _, _, _, result, _ = held
    assert (result["events_in"], result["events_accepted"], result["events_quarantined"], result["events_held_back"],
            result["events_duplicate"]) == (20, 6, 11, 2, 1)
    assert reconciles(result)


def test_quarantine_says_which_reports_wait_and_why_and_refuses_non_finite_numbers(held, spark):
    settings, _, _, _, _ = held
    rows = sorted(tuple(r) for r in store.read(spark, settings, QUARANTINE).select(
        F.substring("event_id", -3, 3), "province_code", "unit_code", "indicator_code", "rule", "observed_value",
        "expected", "status").collect())
    unit_key = "expect_column_values_to_be_in_set:unit_key"
    units = "value_set=[" + ", ".join(validate_job.suite_parameters(validate_job.parse_period(PERIOD))["unit_keys"]) + "]"
    held_back = ("province 38: 8 of 14 reports quarantined (57.1 %)",
                 "at most 50% of a province's reports quarantined (gate policy, from 10 reports)")
    assert rows == sorted([
        *[(f"2{n:02d}", "38", f"38.X{n:02d}", "agencies_with_cio", unit_key, f"38|38.X{n:02d}", units, "open")
          for n in range(1, 9)],
        ("209", "38", "38.S01", None, "held_back", *held_back, "held"),
        ("210", "38", "38.S05", None, "held_back", *held_back, "held"),
        ("211", "25", "25.S03", None, "duplicate_event_id", "partition 0 offset 114", "event id not seen before",
         "open"),
        ("212", "01", "01.S01", "computers_per_100_staff", "expect_column_values_to_be_in_set:finite_numbers",
         "denominator=Infinity", "value_set=[finite]", "open"),
        ("213", "04", "04.S01", "it_staff", "expect_column_values_to_be_in_set:finite_numbers", "value=NaN",
         "value_set=[finite]", "open"),
        ("213", "04", "04.S01", "it_staff", "expect_column_pair_values_a_to_be_greater_than_b:valid_max,reported_value",
         "valid_max=100000.0, reported_value=nan", "or_equal=True, ignore_row_if=either_value_is_missing", "open"),
    ])


def test_the_run_register_and_the_alert_say_what_was_held_and_dropped(held, spark):
    settings, _, _, _, alerts = held
    runs = {r.rule: (r.level, r.action, r.unexpected_count) for r in store.read(spark, settings, VALIDATION_RUNS)
            .where(F.col("rule").isin("held_back", "exact_redelivery", "duplicate_event_id")).collect()}
    assert runs == {"held_back": ("report", "hold", 2), "exact_redelivery": ("report", "drop", 1),
                    "duplicate_event_id": ("report", "quarantine", 1)}
    [alert] = [a for a in alerts if a["kind"] == "held_back"]
    assert (alert["period"], alert["events_held_back"], [p["province_code"] for p in alert["provinces"]]) == (
        PERIOD, 2, ["38"])
    assert len(alerts) == 1  # the first run held no province back: no alert


def test_rerun_of_a_held_province_changes_nothing(held, spark):
    settings, _, _, result, _ = held
    tables = (SILVER_VALUES, QUARANTINE, WARNINGS, VALIDATION_RUNS)
    before = {t: store.version(spark, settings, t) for t in tables}
    again = validate_period(settings, PERIOD)
    assert {t: store.version(spark, settings, t) for t in tables} == before
    assert {k: v for k, v in again.items()} == {k: v for k, v in result.items()
                                                 if k not in ("period_id", "delta_versions", "held_back_alert")}
