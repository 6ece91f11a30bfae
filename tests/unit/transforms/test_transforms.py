"""Transforms on tiny DataFrames, with the expected rows written out."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pyspark.sql import functions as F

from readiness.contracts.encoding import TARGET_PLAN, encode
from readiness.transforms.aggregate import (
    latest_revisions,
    province_indicator_values,
    reporting_completeness,
    restate_provinces,
)
from readiness.transforms.conform import (
    add_rule_columns,
    duplicate_quarantine_rows,
    explode_values,
    split_duplicate_events,
    split_redeliveries,
)
from readiness.transforms.decode import decode_messages, split_decoded

T0 = datetime(2026, 9, 10, tzinfo=timezone.utc)
SILVER = ("event_id string, province_code string, unit_code string, report_type string, period_id string, "
          "revision int, submitted_at timestamp, indicator_code string, numerator double, denominator double, value double")
CATALOGUE = ("code string, rollup string, scale double, numerator_at_most_denominator boolean, "
             "min_value double, max_value double")


@pytest.fixture(scope="module")
def catalogue(spark):
    return spark.createDataFrame([
        ("share", "ratio_of_sums", 100.0, True, 0.0, 100.0),
        ("per_100", "ratio_of_sums", 100.0, False, 0.0, 300.0),
        ("budget", "sum", 1.0, False, 0.0, 1e15),
    ], CATALOGUE)


def test_ratio_is_of_sums_not_mean_of_ratios(spark, catalogue):
    silver = spark.createDataFrame([
        ("e1", "01", "u1", "quarterly", "2026Q3", 0, T0, "share", 1.0, 1.0, None),     # 100 %
        ("e2", "01", "u2", "quarterly", "2026Q3", 0, T0, "share", 10.0, 100.0, None),  # 10 %
        ("e1", "01", "u1", "quarterly", "2026Q3", 0, T0, "budget", None, None, 5.0),
        ("e2", "01", "u2", "quarterly", "2026Q3", 0, T0, "budget", None, None, 7.0),
    ], SILVER)
    got = province_indicator_values(silver, catalogue, "as_reported").orderBy("indicator_code").collect()
    # Mean of ratios would be 55 %; the ratio of sums is 11 / 101.
    assert [(r.indicator_code, r.numerator_sum, r.denominator_sum, round(r.value, 6), r.units_reported) for r in got] == [
        ("budget", None, None, 12.0, 2),
        ("share", 11.0, 101.0, round(11 / 101 * 100, 6), 2),
    ]


def test_latest_revision_wins_then_latest_submission(spark):
    silver = spark.createDataFrame([
        ("a0", "01", "u1", "quarterly", "2026Q3", 0, T0, "share", 1.0, 2.0, None),
        ("a1", "01", "u1", "quarterly", "2026Q3", 1, T0, "share", 2.0, 2.0, None),
        ("b0", "01", "u2", "quarterly", "2026Q3", 0, T0, "share", 1.0, 4.0, None),
        ("b1", "01", "u2", "quarterly", "2026Q3", 0, datetime(2026, 9, 11, tzinfo=timezone.utc), "share", 3.0, 4.0, None),
        ("c0", "01", "u1", "quarterly", "2026Q2", 0, T0, "share", 0.0, 2.0, None),  # another period: kept
    ], SILVER)
    assert sorted(r.event_id for r in latest_revisions(silver).collect()) == ["a1", "b1", "c0"]


def test_restatement_re_sums_merged_provinces(spark, catalogue):
    # Hòa Bình (17) merged into Phú Thọ (25) on 1 July 2025: restated, their counts are summed.
    silver = spark.createDataFrame([
        ("e1", "17", "17.S01", "quarterly", "2025Q2", 0, T0, "share", 1.0, 4.0, None),
        ("e2", "25", "25.S01", "quarterly", "2025Q2", 0, T0, "share", 3.0, 4.0, None),
        ("e3", "38", "38.S01", "quarterly", "2025Q2", 0, T0, "share", 2.0, 2.0, None),
    ], SILVER)
    mapping = spark.createDataFrame([("17", "25"), ("25", "25"), ("38", "38")], "former_code string, code_2025 string")
    as_reported = province_indicator_values(silver, catalogue, "as_reported")
    restated = province_indicator_values(restate_provinces(silver, mapping), catalogue, "restated_2025")
    got = as_reported.unionByName(restated).orderBy("basis", "province_code").select(
        "basis", "province_code", "numerator_sum", "denominator_sum", "value").collect()
    assert [tuple(r) for r in got] == [
        ("as_reported", "17", 1.0, 4.0, 25.0),
        ("as_reported", "25", 3.0, 4.0, 75.0),
        ("as_reported", "38", 2.0, 2.0, 100.0),
        ("restated_2025", "25", 4.0, 8.0, 50.0),
        ("restated_2025", "38", 2.0, 2.0, 100.0),
    ]


def test_completeness_counts_expected_units_only_and_first_submission_decides(spark):
    expected = spark.createDataFrame([("01", "u1"), ("01", "u2"), ("01", "u3"), ("02", "v1")],
                                     "province_code string, unit_code string")
    deadline = "2026-09-20T16:59:59.999000+00:00"
    submissions = spark.createDataFrame([
        ("01", "u1", datetime(2026, 9, 20, 16, 30, tzinfo=timezone.utc)),  # 23:30 Hanoi on the due date: on time
        ("01", "u1", datetime(2026, 9, 25, tzinfo=timezone.utc)),          # a later correction does not make it late
        ("01", "u2", datetime(2026, 9, 20, 17, 30, tzinfo=timezone.utc)),  # 00:30 the next day: late
        ("01", "x9", T0),                                                  # not an expected unit: ignored
    ], "province_code string, unit_code string, submitted_at timestamp")
    got = reporting_completeness(expected, submissions, deadline).orderBy("province_code").collect()
    assert [tuple(r) for r in got] == [
        ("01", 3, 2, 1, 1, 1, 66.67, 33.33, ["u3"]),
        ("02", 1, 0, 0, 0, 1, 0.0, 0.0, ["v1"]),
    ]


def test_decode_splits_reports_targets_and_dead_letters(spark):
    good = encode({
        "event_id": "00000000-0000-4000-8000-000000000001", "province_code": "38",
        "reporting_unit": {"code": "38.S01", "kind": "AGENCY", "name": "Sở Nội vụ"},
        "report_type": "QUARTERLY", "period": "2026Q3",
        "values": [{"indicator_code": "share", "numerator": 1.0, "denominator": 2.0, "value": None, "unit": None}],
        "revision": 0, "submitted_at": T0, "source_system": "test",
    })
    plan = encode({
        "event_id": "00000000-0000-4000-8000-000000000002", "province_code": "38", "plan_year": 2026,
        "plan_reference": "128/KH-UBND", "targets": [
            {"indicator_code": "computers_per_100_staff", "target_value": 80.0, "comparison": "AT_LEAST"}],
        "revision": 0, "submitted_at": T0, "source_system": "test",
    }, TARGET_PLAN)
    raw = spark.createDataFrame([
        ("t", 0, 0, T0, "38", bytearray(good)),
        ("t", 0, 1, T0, "38", bytearray(b"not avro")),
        ("t", 0, 2, T0, "38", bytearray(plan)),
    ], "topic string, partition int, offset long, kafka_timestamp timestamp, kafka_key string, raw_value binary")
    bronze, targets, dead = split_decoded(decode_messages(raw, F.lit(T0)))
    assert [(r.offset, r.province_code, r.plan_year, r.plan_reference, [tuple(t) for t in r.targets])
            for r in targets.collect()] == [
        (2, "38", 2026, "128/KH-UBND", [("computers_per_100_staff", 80.0, "at_least")])]
    assert [(r.offset, r.event_id, r.unit_code, r.unit_kind, r.unit_name, r.report_type, r.period_id, r.submitted_at,
             [tuple(v) for v in r["values"]]) for r in bronze.collect()] == [
        (0, "00000000-0000-4000-8000-000000000001", "38.S01", "agency", "Sở Nội vụ", "quarterly", "2026Q3",
         T0.replace(tzinfo=None), [("share", 1.0, 2.0, None, None)])]
    assert [(r.offset, r.reason) for r in dead.collect()] == [(1, "bad_marker")]


def test_explode_keeps_a_report_without_values_and_duplicates_are_split(spark, catalogue):
    schema = ("event_id string, province_code string, unit_code string, unit_kind string, unit_name string, "
              "report_type string, period_id string, revision int, submitted_at timestamp, source_system string, "
              "topic string, partition int, offset long, ingested_at timestamp, "
              "values array<struct<indicator_code:string,numerator:double,denominator:double,value:double,unit:string>>")
    bronze = spark.createDataFrame([
        ("e1", "01", "u1", "agency", None, "quarterly", "2026Q3", 0, T0, "s", "t", 0, 5, T0,
         [("share", 3.0, 4.0, None, None), ("per_100", 120.0, 100.0, None, None)]),
        ("e1", "01", "u1", "agency", None, "quarterly", "2026Q3", 0, T0, "s", "t", 1, 2, T0, []),
        ("e2", "01", "u2", "agency", None, "quarterly", "2026Q3", 0, T0, "s", "t", 0, 9, T0, []),
    ], schema)
    first, later = split_duplicate_events(bronze)
    assert [(r.event_id, r.partition, r.offset) for r in later.collect()] == [("e1", 1, 2)]
    rows = add_rule_columns(explode_values(first), catalogue, "2026-06-14T17:00:00+00:00").orderBy(
        "event_id", "indicator_code").collect()
    assert [(r.event_id, r.indicator_code, r.numerator, r.numerator_limit, r.reported_value, r.valid_max, r.unit_key,
             r.period_opens_at) for r in rows] == [
        ("e1", "per_100", 120.0, None, 120.0, 300.0, "01|u1", datetime(2026, 6, 14, 17, 0)),
        ("e1", "share", 3.0, 4.0, 75.0, 100.0, "01|u1", datetime(2026, 6, 14, 17, 0)),
        ("e2", None, None, None, None, None, "01|u2", datetime(2026, 6, 14, 17, 0)),
    ]


def test_an_exact_redelivery_is_dropped_and_a_reused_event_id_is_quarantined(spark):
    schema = ("event_id string, province_code string, unit_code string, period_id string, partition int, "
              "offset long, ingested_at timestamp, raw_value binary")
    bronze = spark.createDataFrame([
        ("e1", "01", "u1", "2026Q3", 0, 5, T0, bytearray(b"report one")),
        ("e1", "01", "u1", "2026Q3", 1, 2, T0, bytearray(b"report one")),    # resent after a broker failure
        ("e1", "01", "u1", "2026Q3", 0, 7, T0, bytearray(b"report one")),    # and again
        ("e2", "01", "u2", "2026Q3", 0, 9, T0, bytearray(b"report two")),
        ("e2", "01", "u2", "2026Q3", 0, 11, T0, bytearray(b"other report")),  # the id reused for other content
    ], schema)
    first, later = split_duplicate_events(bronze)
    exact, conflicting = split_redeliveries(first, later)
    assert sorted((r.event_id, r.partition, r.offset) for r in first.collect()) == [("e1", 0, 5), ("e2", 0, 9)]
    assert sorted((r.event_id, r.partition, r.offset) for r in exact.collect()) == [("e1", 0, 7), ("e1", 1, 2)]
    assert exact.columns == bronze.columns
    assert [tuple(r) for r in duplicate_quarantine_rows(conflicting).collect()] == [
        ("e2", "01", "u2", "2026Q3", None, "duplicate_event_id", "partition 0 offset 11", "event id not seen before",
         "quarantine", T0.replace(tzinfo=None))]


def test_non_finite_numbers_are_named_for_the_gate(spark, catalogue):
    values = spark.createDataFrame([
        ("e1", "01", "u1", "share", 1.0, float("inf"), None),  # an infinite denominator makes the ratio 0
        ("e2", "01", "u1", "per_100", float("nan"), 100.0, None),
        ("e3", "01", "u1", "budget", None, None, float("-inf")),
        ("e4", "01", "u1", "share", float("inf"), float("nan"), float("inf")),
        ("e5", "01", "u1", "share", 1.0, 2.0, None),
        ("e6", "01", "u1", None, None, None, None),  # a report without values
    ], "event_id string, province_code string, unit_code string, indicator_code string, numerator double, "
       "denominator double, value double")
    got = add_rule_columns(values, catalogue, "2026-06-14T17:00:00+00:00").orderBy("event_id").collect()
    nan = pytest.approx(float("nan"), nan_ok=True)
    assert [(r.event_id, r.reported_value, r.finite_numbers) for r in got] == [
        ("e1", 0.0, "denominator=Infinity"),
        ("e2", nan, "numerator=NaN"),
        ("e3", float("-inf"), "value=-Infinity"),
        ("e4", nan, "numerator=Infinity, denominator=NaN, value=Infinity"),
        ("e5", 50.0, "finite"),
        ("e6", None, "finite"),
    ]


def test_target_attainment_uses_the_latest_plan_and_both_comparisons(spark):
    from readiness.transforms.targets import attainment, latest_targets

    plans = spark.createDataFrame([
        ("p0", "38", 2026, "128/KH-UBND", [("computers_per_100_staff", 70.0, "at_least")], 0, T0),
        ("p1", "38", 2026, "128/KH-UBND", [("computers_per_100_staff", 80.0, "at_least"),
                                             ("security_incidents", 4.0, "at_most"),
                                             ("services_online_level3", 5.0, "at_least")], 1, T0),
        ("p2", "38", 2025, "99/KH-UBND", [("computers_per_100_staff", 50.0, "at_least")], 0, T0),
    ], "event_id string, province_code string, plan_year int, plan_reference string, "
       "targets array<struct<indicator_code:string,target_value:double,comparison:string>>, revision int, "
       "submitted_at timestamp")
    values = spark.createDataFrame([("38", "computers_per_100_staff", 72.0), ("38", "security_incidents", 2.0)],
                                   "province_code string, indicator_code string, value double")
    got = attainment(latest_targets(plans, 2026), values).orderBy("indicator_code").select(
        "indicator_code", "plan_event_id", "target_value", "actual", "attainment_ratio", "on_track", "status").collect()
    assert [tuple(r) for r in got] == [
        ("computers_per_100_staff", "p1", 80.0, 72.0, 0.9, False, "behind"),
        ("security_incidents", "p1", 4.0, 2.0, 2.0, True, "on_track"),
        ("services_online_level3", "p1", 5.0, None, None, None, "no_actual"),
    ]
