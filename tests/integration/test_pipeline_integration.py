"""End to end on the real engines: publish through the Kafka broker, run the real Airflow DAG
(ingest -> validate -> publish with Spark, Delta and Great Expectations), check the exact gold rows
and that counts reconcile. (That a rerun leaves the tables and their Delta versions as they were is
checked after faults in ``tests/faults/test_period_faults.py`` and through Airflow in
``test_orchestration_engine.py``.)"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from readiness.contracts.encoding import TARGET_PLAN
from readiness.contracts.producer import ReportProducer
from readiness.dev.airflow import run_dag
from readiness.lake import store
from readiness.lake.tables import (
    BRONZE_REPORTS,
    BRONZE_TARGETS,
    DEAD_LETTERS,
    GOLD_ATTAINMENT,
    GOLD_COMPLETENESS,
    GOLD_INDEX,
    GOLD_VALUES,
    QUARANTINE,
    VALIDATION_RUNS,
)
from support.reports import report_event

pytestmark = pytest.mark.slow

PERIOD = "2026Q3"
ON_TIME = datetime(2026, 9, 18, 3, 0, tzinfo=timezone.utc)
LATE = datetime(2026, 9, 21, 2, 0, tzinfo=timezone.utc)  # 09:00 on 21 September in Hanoi, due the 20th


def ratio(code: str, numerator: float, denominator: float) -> dict:
    return {"indicator_code": code, "numerator": numerator, "denominator": denominator, "value": None, "unit": None}


def report(event: int, province: str, unit: str, kind: str, values: list[dict], revision: int = 0,
           submitted_at: datetime = ON_TIME) -> dict:
    return report_event(event, province, unit, kind, values, PERIOD, submitted_at, revision,
                        source_system="integration-test")


REPORTS = [
    report(1, "38", "38.S01", "AGENCY", [ratio("computers_per_100_staff", 90, 100), ratio("agencies_with_it_staff", 1, 1)]),
    report(2, "38", "38.S02", "AGENCY", [ratio("computers_per_100_staff", 30, 50), ratio("agencies_with_it_staff", 0, 1)]),
    # A correction of 38.S02: revision 1 supersedes revision 0.
    report(3, "38", "38.S02", "AGENCY", [ratio("computers_per_100_staff", 40, 50), ratio("agencies_with_it_staff", 0, 1)],
           revision=1, submitted_at=LATE),
    # More computers than civil servants is legitimate for this indicator.
    report(4, "25", "25.S01", "AGENCY", [ratio("computers_per_100_staff", 120, 100)], submitted_at=LATE),
    # More email users than civil servants is not: the report is quarantined.
    report(5, "25", "25.S02", "AGENCY", [ratio("staff_using_official_email", 60, 50)]),
]


PLAN = {
    "event_id": "00000000-0000-4000-8000-000000000100", "province_code": "38", "plan_year": 2026,
    "plan_reference": "128/KH-UBND", "revision": 0, "source_system": "integration-test",
    "submitted_at": datetime(2025, 12, 20, tzinfo=timezone.utc),
    "targets": [
        {"indicator_code": "computers_per_100_staff", "target_value": 80.0, "comparison": "AT_LEAST"},
        {"indicator_code": "agencies_with_it_staff", "target_value": 60.0, "comparison": "AT_LEAST"},
        {"indicator_code": "services_online_level3", "target_value": 5.0, "comparison": "AT_LEAST"},
    ],
}


@pytest.fixture(scope="module")
def pipeline_run(isolated, spark):
    settings = isolated("pipeline")
    with ReportProducer(settings) as producer:
        sent = producer.publish_reports(REPORTS)
        # The same event delivered twice with the same bytes: an exact re-delivery, dropped at validation.
        sent = sent.merge(producer.publish_reports(REPORTS[3:4]))
        sent = sent.merge(producer.send_raw(settings.topic_reports, [("25", b"\xc3\x01garbage")]))
        sent = sent.merge(producer.publish_reports([PLAN], TARGET_PLAN, settings.topic_targets))
    assert sent.not_acknowledged == 0 and sent.sent == 8
    result = run_dag(settings, "readiness_period_pipeline", {"period_id": PERIOD}, timeout=900)
    return settings, result, spark


def rows(spark, settings, table, columns, order):
    df = store.read(spark, settings, table).where(f"period_id = '{PERIOD}'") if table != DEAD_LETTERS \
        else store.read(spark, settings, table)
    return [tuple(r) for r in df.select(*columns).orderBy(*order).collect()]


def test_dag_succeeds_with_every_task(pipeline_run):
    _, result, _ = pipeline_run
    assert result.state == "success"
    assert result.task_states == {"ingest_reports": "success", "validate_batch": "success", "publish_tables": "success",
                                  "record_run": "success"}


def test_counts_reconcile(pipeline_run):
    settings, result, spark = pipeline_run
    ingest = result.xcom["ingest_reports"]
    validate = result.xcom["validate_batch"]
    bronze = store.read(spark, settings, BRONZE_REPORTS).count()
    dead = store.read(spark, settings, DEAD_LETTERS).count()
    plans = store.read(spark, settings, BRONZE_TARGETS).count()
    assert (ingest["events_in"], bronze, plans, dead) == (8, 6, 1, 1)
    assert (ingest["bronze_rows"], ingest["target_plans"], ingest["dead_letters"], ingest["already_in_bronze"],
            ingest["checkpoint"]) == (6, 1, 1, 0, "fresh")
    assert ingest["events_in"] == (ingest["bronze_rows"] + ingest["target_plans"] + ingest["dead_letters"]
                                   + ingest["already_in_bronze"]) == bronze + plans + dead
    # 6 bronze events: 1-4 accepted, 5 quarantined, the second delivery of 4 (same bytes) dropped.
    assert (validate["events_in"], validate["events_accepted"], validate["events_quarantined"],
            validate["events_held_back"], validate["events_duplicate"]) == (6, 4, 1, 0, 1)
    assert validate["events_in"] == (validate["events_accepted"] + validate["events_quarantined"]
                                     + validate["events_held_back"] + validate["events_duplicate"])
    assert (validate["quarantine_rows"], validate["held_back_provinces"], validate["held_back_alert"]) == (2, [], None)
    # The re-delivery is counted in the run's summary (dropped), not quarantined.
    runs = {r["rule"]: (r["action"], r["unexpected_count"]) for r in store.read(spark, settings, VALIDATION_RUNS)
            .where(f"period_id = '{PERIOD}'").where("rule IN ('exact_redelivery', 'duplicate_event_id', 'held_back')")
            .collect()}
    assert runs == {"exact_redelivery": ("drop", 1)}


def test_quarantine_says_why(pipeline_run):
    settings, _, spark = pipeline_run
    got = rows(spark, settings, QUARANTINE,
               ["event_id", "unit_code", "indicator_code", "rule", "status", "observed_value"], ["event_id", "rule"])
    # Only report 5: the exact re-delivery of report 4 is dropped, it has no quarantine row.
    assert [(e[-12:], u, i, r, s) for e, u, i, r, s, _ in got] == [
        ("000000000005", "25.S02", "staff_using_official_email",
         "expect_column_pair_values_a_to_be_greater_than_b:numerator_limit,numerator", "open"),
        # 60 of 50 staff is 120 %, above the catalogue's valid maximum of 100 %: a second rule fires.
        ("000000000005", "25.S02", "staff_using_official_email",
         "expect_column_pair_values_a_to_be_greater_than_b:valid_max,reported_value", "open"),
    ]
    assert "60" in got[0][5] and "50" in got[0][5]
    assert "120" in got[1][5]


def test_dead_letter_keeps_raw_bytes_and_reason(pipeline_run):
    settings, _, spark = pipeline_run
    assert rows(spark, settings, DEAD_LETTERS, ["kafka_key", "raw_value", "reason"], ["offset"]) == [
        ("25", bytearray(b"\xc3\x01garbage"), "truncated")]


def test_gold_values_are_ratios_of_sums_with_the_latest_revision(pipeline_run):
    settings, _, spark = pipeline_run
    got = rows(spark, settings, GOLD_VALUES,
               ["basis", "province_code", "indicator_code", "numerator_sum", "denominator_sum", "value", "units_reported"],
               ["basis", "province_code", "indicator_code"])
    expected_one_basis = [
        ("25", "computers_per_100_staff", 120.0, 100.0, 120.0, 1),
        ("38", "agencies_with_it_staff", 1.0, 2.0, 50.0, 2),
        ("38", "computers_per_100_staff", 130.0, 150.0, 130 / 150 * 100, 2),
    ]
    expected = [("as_reported", *r) for r in expected_one_basis] + [("restated_2025", *r) for r in expected_one_basis]
    assert [r[:5] + (pytest.approx(r[5]),) + r[6:] for r in expected] == got


def test_gold_index_and_competition_rank(pipeline_run):
    settings, _, spark = pipeline_run
    got = rows(spark, settings, GOLD_INDEX, ["basis", "methodology_id", "province_code", "readiness_index", "rank"],
               ["basis", "methodology_id", "rank"])
    ict = [r for r in got if r[1] == "ict-index"]
    # 38: infrastructure 0.8667, human resources 0.5, application not reported (0): mean 0.4556.
    # 25: infrastructure 1.0 (capped), human resources 0: mean 0.3333.
    assert ict == [
        ("as_reported", "ict-index", "38", 0.4556, 1), ("as_reported", "ict-index", "25", 0.3333, 2),
        ("restated_2025", "ict-index", "38", 0.4556, 1), ("restated_2025", "ict-index", "25", 0.3333, 2),
    ]
    # DTI: points-weighted sum / 1000. 38: (0.8667 x 100 + 0.5 x 100) / 1000; 25: (1.0 x 100) / 1000.
    dti = [r for r in got if r[1] == "dti-2022" and r[0] == "restated_2025"]
    assert dti == [("restated_2025", "dti-2022", "38", 0.1367, 1), ("restated_2025", "dti-2022", "25", 0.1, 2)]


def test_reporting_completeness(pipeline_run):
    settings, _, spark = pipeline_run
    got = {r[0]: r[1:] for r in rows(spark, settings, GOLD_COMPLETENESS,
                                     ["province_code", "expected", "received", "on_time", "late", "missing", "basis"],
                                     ["province_code"]) if r[-1] == "restated_2025"}
    # The registry lists 39 units open in Phú Thọ (25) and 27 in Thanh Hóa (38) on 14 September 2026.
    # Timeliness is the broker's receipt time (LogAppendTime): the reports were received when the test
    # ran, after the period's due date, so they are late whatever submitted_at they declare.
    assert got["25"] == (39, 2, 0, 2, 37, "restated_2025")
    assert got["38"] == (27, 2, 0, 2, 25, "restated_2025")
    assert len(got) == 34


def test_target_attainment(pipeline_run):
    settings, _, spark = pipeline_run
    got = rows(spark, settings, GOLD_ATTAINMENT,
               ["province_code", "indicator_code", "target_value", "actual", "attainment_ratio", "status"],
               ["indicator_code"])
    assert [r[:3] + (None if r[3] is None else round(r[3], 4),) + r[4:] for r in got] == [
        ("38", "agencies_with_it_staff", 60.0, 50.0, 0.8333, "behind"),
        ("38", "computers_per_100_staff", 80.0, 86.6667, 1.0833, "on_track"),
        ("38", "services_online_level3", 5.0, None, None, "no_actual"),
    ]
