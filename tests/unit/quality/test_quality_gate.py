"""The Great Expectations gate on silver candidate report values, on a real local Spark.

Fixture batches are tiny DataFrames written inline; expected quarantine rows are literal.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from great_expectations.core.expectation_suite import ExpectationSuite
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from readiness.quality.gate import (
    KEY_COLUMNS,
    QUARANTINE_SCHEMA,
    GateResult,
    QualityGateError,
    SuiteError,
    accepted_rows,
    bind_parameters,
    load_suite,
    quarantine_rows,
    run_suite,
)
from readiness.settings import PROJECT_ROOT

SUITE_PATH = PROJECT_ROOT / "expectations" / "silver_report_values.json"
# The job binds the catalogue's codes; these tests bind their own two.
SUITE_PARAMETERS = {"indicator_codes": ["ICT01", "ICT02"], "province_codes": ["01", "96"],
                    "unit_keys": ["01|C001", "01|P01", "96|C001"]}
UTC = dt.timezone.utc
RUN_ID = "run-2026-10-01T04:00Z"
QUARANTINED_AT = dt.datetime(2026, 10, 1, 4, 0, 0, tzinfo=UTC)
SUBMITTED_AT = dt.datetime(2026, 10, 1, 3, 0, 0, tzinfo=UTC)
OPENS_AT = dt.datetime(2026, 6, 14, 17, 0, 0, tzinfo=UTC)  # 15 June 2026 00:00 in Hanoi

SCHEMA = (
    "event_id string, province_code string, unit_code string, unit_kind string, report_type string, "
    "period_id string, indicator_code string, numerator double, denominator double, numerator_limit double, value double, "
    "reported_value double, valid_min double, valid_max double, unit_key string, period_opens_at timestamp, "
    "value_unit string, revision int, submitted_at timestamp, source_system string, finite_numbers string, "
    "kafka_partition int, kafka_offset long"
)
COLUMNS = [part.split()[0] for part in SCHEMA.split(", ")]

NOT_NULL = "expect_column_values_to_not_be_null"
BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
REGEX = "expect_column_values_to_match_regex"
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
UNIQUE = "expect_compound_columns_to_be_unique"

# The suite's row rules (quarantine) and batch rules (fail_batch), by rule name.
ROW_RULES = {
    f"{NOT_NULL}:event_id",
    f"{NOT_NULL}:province_code",
    f"{NOT_NULL}:unit_code",
    f"{NOT_NULL}:unit_kind",
    f"{NOT_NULL}:report_type",
    f"{NOT_NULL}:period_id",
    f"{NOT_NULL}:indicator_code",
    f"{NOT_NULL}:revision",
    f"{NOT_NULL}:submitted_at",
    f"{NOT_NULL}:source_system",
    f"{REGEX}:province_code",
    f"{REGEX}:period_id",
    f"{IN_SET}:report_type",
    f"{IN_SET}:unit_kind",
    f"{BETWEEN}:numerator",
    f"{BETWEEN}:denominator",
    f"{BETWEEN}:revision",
    f"{IN_SET}:finite_numbers",
    f"{PAIR}:numerator_limit,numerator",
    f"{IN_SET}:indicator_code",
    f"{IN_SET}:province_code",
    f"{IN_SET}:unit_key",
    f"{PAIR}:valid_max,reported_value",
    f"{PAIR}:reported_value,valid_min",
    f"{PAIR}:submitted_at,period_opens_at",
    f"{UNIQUE}:event_id,indicator_code",
}
BATCH_RULES = {"expect_table_row_count_to_be_between", "expect_table_columns_to_match_set"}


def value_row(event_id: str | None, indicator_code: str | None = "ICT01", **changes: object) -> tuple:
    """A valid row (province 01, commune C001, 2026Q3) with ``changes`` applied."""
    row = {
        "event_id": event_id,
        "province_code": "01",
        "unit_code": "C001",
        "unit_kind": "commune",
        "report_type": "quarterly",
        "period_id": "2026Q3",
        "indicator_code": indicator_code,
        "numerator": 3.0,
        "denominator": 4.0,
        "numerator_limit": 4.0,
        "reported_value": 75.0,
        "valid_min": 0.0,
        "valid_max": 100.0,
        "unit_key": "01|C001",
        "period_opens_at": OPENS_AT,
        "value": 75.0,
        "value_unit": "percent",
        "revision": 0,
        "submitted_at": SUBMITTED_AT,
        "source_system": "portal",
        "finite_numbers": "finite",
        "kafka_partition": 0,
        "kafka_offset": 1,
    }
    unknown = set(changes) - set(row)
    assert not unknown, unknown
    row.update(changes)
    return tuple(row[c] for c in COLUMNS)


@pytest.fixture(scope="module")
def suite() -> ExpectationSuite:
    return load_suite(SUITE_PATH, SUITE_PARAMETERS)


def frame(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, SCHEMA)


# --------------------------------------------------------------------------- suite file


def test_suite_file_loads_with_every_rule(suite: ExpectationSuite) -> None:
    assert suite.name == "silver_report_values"
    assert len(suite.expectations) == 28
    rules = {}
    for exp in suite.expectations:
        kwargs = exp.configuration.kwargs
        cols = kwargs.get("column") or ",".join(
            kwargs.get("column_list") or [c for c in (kwargs.get("column_A"), kwargs.get("column_B")) if c]
        )
        rules[f"{exp.expectation_type}:{cols}" if cols else exp.expectation_type] = exp.meta["severity"]
    assert rules == {**{r: "quarantine" for r in ROW_RULES}, **{r: "fail_batch" for r in BATCH_RULES}}


def test_load_suite_rejects_an_expectation_gx_would_silently_drop(tmp_path: Path) -> None:
    raw = json.loads(SUITE_PATH.read_text())
    raw["expectations"].append({"type": "expect_column_values_to_be_positive_please", "kwargs": {"column": "value"},
                                "meta": {"severity": "quarantine"}})
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(raw))
    # GX itself only logs the unknown type and builds a suite without it:
    bound = bind_parameters(json.loads(path.read_text()), SUITE_PARAMETERS, "test")
    assert len(ExpectationSuite(**bound).expectations) == 28
    with pytest.raises(SuiteError, match="built 28 of 29.*expect_column_values_to_be_positive_please"):
        load_suite(path, SUITE_PARAMETERS)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda raw: raw.pop("name"), "has no name"),
        (lambda raw: raw.update(expectations=[]), "has no expectations"),
        (lambda raw: raw["expectations"][0]["meta"].pop("severity"), "meta.severity must be one of"),
        (lambda raw: raw["expectations"][-1]["meta"].update(severity="quarantine"), "only row .* can quarantine"),
        (lambda raw: raw["expectations"].append(raw["expectations"][0]), "duplicate expectation"),
        (lambda raw: raw["expectations"].append({"type": REGEX, "kwargs": {"column": "period_id", "regex": "^2"},
                                                 "meta": {"severity": "quarantine"}}), "is not unique"),
        (lambda raw: raw["expectations"][0]["kwargs"].update(mostly=0.9), "must not use 'mostly'"),
    ],
)
def test_load_suite_rejects_unusable_suites(tmp_path: Path, mutate, message: str) -> None:
    raw = json.loads(SUITE_PATH.read_text())
    mutate(raw)
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(SuiteError, match=message):
        load_suite(path, SUITE_PARAMETERS)


# --------------------------------------------------------------------------- clean batch


def test_clean_batch_passes_with_no_quarantine(spark: SparkSession, suite: ExpectationSuite) -> None:
    df = frame(
        spark,
        [
            value_row("ev-1", "ICT01"),
            value_row("ev-1", "ICT02", numerator=None, denominator=None, value=None, value_unit=None),
            value_row("ev-2", "ICT01", report_type="yearly", period_id="2026", unit_kind="province",
                      unit_code="P01", unit_key="01|P01", numerator=0.0, denominator=0.0, revision=2),
            value_row("ev-3", "ICT01", report_type="six_monthly", period_id="2026S1", unit_kind="agency",
                      province_code="96", unit_key="96|C001"),
            # No limit (computers per 100 civil servants may exceed the denominator): not checked.
            value_row("ev-4", "ICT01", numerator=120.0, denominator=100.0, numerator_limit=None),
        ],
    )
    result = run_suite(df, suite, list(KEY_COLUMNS))
    assert result.passed
    assert len(result.outcomes) == 28
    assert all(o.success and o.exception is None for o in result.outcomes)
    assert {o.rule for o in result.outcomes if o.level == "row"} == ROW_RULES
    assert all(o.unexpected_count == 0 and o.element_count == 5 and o.failures == ()
               for o in result.outcomes if o.level == "row")

    quarantine = quarantine_rows(df, result, list(KEY_COLUMNS), RUN_ID, QUARANTINED_AT)
    assert quarantine.schema == QUARANTINE_SCHEMA
    assert quarantine.count() == 0
    assert sorted(map(repr, accepted_rows(df, quarantine).collect())) == sorted(map(repr, df.collect()))


# --------------------------------------------------------------------------- dirty batch

# One row per row rule (plus a clean event, a clean row of a failing event, and a row
# that breaks two rules). Each "eNN" event is quarantined; only "ok-1" and "ok-2" are accepted.
DIRTY_ROWS = [
    value_row("ok-1", "ICT01"),
    value_row("ok-1", "ICT02"),
    value_row("ok-2", "ICT01", numerator=None, denominator=None, value=None, value_unit=None),
    value_row(None, "ICT01"),
    value_row("e03", province_code=None),
    value_row("e04", unit_code=None),
    value_row("e05", unit_kind=None),
    value_row("e06", report_type=None),
    value_row("e07", period_id=None),
    value_row("e08", indicator_code=None),
    value_row("e09", revision=None),
    value_row("e10", submitted_at=None),
    value_row("e11", source_system=None),
    value_row("e12", "ICT01", province_code="1"),
    value_row("e12", "ICT02"),  # clean value of a failing report: dropped with its report
    value_row("e13", period_id="2026Q5"),
    value_row("e14", report_type="monthly"),
    value_row("e15", unit_kind="village"),
    value_row("e16", numerator=-1.0),
    value_row("e17", numerator=None, denominator=-2.5),
    value_row("e18", revision=-1),
    value_row("e19", numerator=5.0, denominator=3.0, numerator_limit=3.0),
    value_row("e22", "computers_per_household"),
    value_row("e23", province_code="17"),  # Hòa Bình's former code: not in force for 2026Q3
    value_row("e24", unit_key="01|X999"),
    value_row("e25", reported_value=150.0),
    value_row("e26", reported_value=-1.0),
    value_row("e27", submitted_at=dt.datetime(2026, 6, 1, tzinfo=UTC)),
    # An infinite denominator (the job derives finite_numbers from numerator, denominator and value).
    value_row("e28", denominator=float("inf"), finite_numbers="denominator=Infinity"),
    value_row("e20", "ICT01"),
    value_row("e20", "ICT01", kafka_offset=2, numerator=-3.0),  # the key repeats; only this copy is negative
    value_row("e21", province_code="ABC", period_id="26Q1"),
]

B0 = "min_value=0, max_value=None"
# (event_id, province_code, unit_code, period_id, indicator_code, rule, observed_value, expected, severity)
EXPECTED_QUARANTINE = sorted(
    [
        (None, "01", "C001", "2026Q3", "ICT01", f"{NOT_NULL}:event_id", None, "", "quarantine"),
        ("e03", None, "C001", "2026Q3", "ICT01", f"{NOT_NULL}:province_code", None, "", "quarantine"),
        ("e04", "01", None, "2026Q3", "ICT01", f"{NOT_NULL}:unit_code", None, "", "quarantine"),
        ("e05", "01", "C001", "2026Q3", "ICT01", f"{NOT_NULL}:unit_kind", None, "", "quarantine"),
        ("e06", "01", "C001", "2026Q3", "ICT01", f"{NOT_NULL}:report_type", None, "", "quarantine"),
        ("e07", "01", "C001", None, "ICT01", f"{NOT_NULL}:period_id", None, "", "quarantine"),
        ("e08", "01", "C001", "2026Q3", None, f"{NOT_NULL}:indicator_code", None, "", "quarantine"),
        ("e09", "01", "C001", "2026Q3", "ICT01", f"{NOT_NULL}:revision", None, "", "quarantine"),
        ("e10", "01", "C001", "2026Q3", "ICT01", f"{NOT_NULL}:submitted_at", None, "", "quarantine"),
        ("e11", "01", "C001", "2026Q3", "ICT01", f"{NOT_NULL}:source_system", None, "", "quarantine"),
        ("e12", "1", "C001", "2026Q3", "ICT01", f"{REGEX}:province_code", "1", "regex=^[0-9]{2}$", "quarantine"),
        ("e13", "01", "C001", "2026Q5", "ICT01", f"{REGEX}:period_id", "2026Q5",
         "regex=^[0-9]{4}(Q[1-4]|S[12])?$", "quarantine"),
        ("e14", "01", "C001", "2026Q3", "ICT01", f"{IN_SET}:report_type", "monthly",
         "value_set=[quarterly, six_monthly, yearly]", "quarantine"),
        ("e15", "01", "C001", "2026Q3", "ICT01", f"{IN_SET}:unit_kind", "village",
         "value_set=[agency, commune, district, province]", "quarantine"),
        ("e16", "01", "C001", "2026Q3", "ICT01", f"{BETWEEN}:numerator", "-1.0", B0, "quarantine"),
        ("e20", "01", "C001", "2026Q3", "ICT01", f"{BETWEEN}:numerator", "-3.0", B0, "quarantine"),
        ("e17", "01", "C001", "2026Q3", "ICT01", f"{BETWEEN}:denominator", "-2.5", B0, "quarantine"),
        ("e18", "01", "C001", "2026Q3", "ICT01", f"{BETWEEN}:revision", "-1", B0, "quarantine"),
        ("e19", "01", "C001", "2026Q3", "ICT01", f"{PAIR}:numerator_limit,numerator", "numerator_limit=3.0, numerator=5.0",
         "or_equal=True, ignore_row_if=either_value_is_missing", "quarantine"),
        ("e20", "01", "C001", "2026Q3", "ICT01", f"{UNIQUE}:event_id,indicator_code",
         "event_id=e20, indicator_code=ICT01", "", "quarantine"),
        ("e20", "01", "C001", "2026Q3", "ICT01", f"{UNIQUE}:event_id,indicator_code",
         "event_id=e20, indicator_code=ICT01", "", "quarantine"),
        ("e21", "ABC", "C001", "26Q1", "ICT01", f"{REGEX}:province_code", "ABC", "regex=^[0-9]{2}$", "quarantine"),
        ("e22", "01", "C001", "2026Q3", "computers_per_household", f"{IN_SET}:indicator_code", "computers_per_household",
         "value_set=[ICT01, ICT02]", "quarantine"),
        ("e12", "1", "C001", "2026Q3", "ICT01", f"{IN_SET}:province_code", "1", "value_set=[01, 96]", "quarantine"),
        ("e21", "ABC", "C001", "26Q1", "ICT01", f"{IN_SET}:province_code", "ABC", "value_set=[01, 96]", "quarantine"),
        ("e23", "17", "C001", "2026Q3", "ICT01", f"{IN_SET}:province_code", "17", "value_set=[01, 96]", "quarantine"),
        ("e24", "01", "C001", "2026Q3", "ICT01", f"{IN_SET}:unit_key", "01|X999",
         "value_set=[01|C001, 01|P01, 96|C001]", "quarantine"),
        ("e25", "01", "C001", "2026Q3", "ICT01", f"{PAIR}:valid_max,reported_value", "valid_max=100.0, reported_value=150.0",
         "or_equal=True, ignore_row_if=either_value_is_missing", "quarantine"),
        ("e26", "01", "C001", "2026Q3", "ICT01", f"{PAIR}:reported_value,valid_min", "reported_value=-1.0, valid_min=0.0",
         "or_equal=True, ignore_row_if=either_value_is_missing", "quarantine"),
        ("e27", "01", "C001", "2026Q3", "ICT01", f"{PAIR}:submitted_at,period_opens_at",
         "submitted_at=2026-06-01T00:00:00, period_opens_at=2026-06-14T17:00:00",
         "or_equal=True, ignore_row_if=either_value_is_missing", "quarantine"),
        ("e21", "ABC", "C001", "26Q1", "ICT01", f"{REGEX}:period_id", "26Q1",
         "regex=^[0-9]{4}(Q[1-4]|S[12])?$", "quarantine"),
        ("e28", "01", "C001", "2026Q3", "ICT01", f"{IN_SET}:finite_numbers", "denominator=Infinity",
         "value_set=[finite]", "quarantine"),
    ],
    key=repr,
)


@pytest.fixture(scope="module")
def dirty(spark: SparkSession, suite: ExpectationSuite) -> tuple[DataFrame, GateResult]:
    df = frame(spark, DIRTY_ROWS)
    return df, run_suite(df, suite, list(KEY_COLUMNS))


def test_dirty_batch_reports_failing_keys_from_gx(dirty: tuple[DataFrame, GateResult]) -> None:
    _, result = dirty
    assert result.passed  # row rules failing does not fail the run
    failed = {o.rule: o for o in result.outcomes if not o.success}
    assert set(failed) == ROW_RULES  # every row rule is broken by the fixture
    pair = failed[f"{PAIR}:numerator_limit,numerator"]
    assert (pair.unexpected_count, pair.element_count) == (1, len(DIRTY_ROWS))
    assert [(f.key, f.observed) for f in pair.failures] == [
        ({"event_id": "e19", "indicator_code": "ICT01"}, {"numerator_limit": 3.0, "numerator": 5.0})
    ]
    regex = failed[f"{REGEX}:province_code"]
    assert sorted((f.key["event_id"], f.observed_value) for f in regex.failures) == [("e12", "1"), ("e21", "ABC")]
    assert failed[f"{NOT_NULL}:event_id"].failures[0].key == {"event_id": None, "indicator_code": "ICT01"}


def test_dirty_batch_quarantines_exactly_the_failing_rows(dirty: tuple[DataFrame, GateResult]) -> None:
    df, result = dirty
    quarantine = quarantine_rows(df, result, list(KEY_COLUMNS), RUN_ID, QUARANTINED_AT)
    assert quarantine.schema == QUARANTINE_SCHEMA
    rows = quarantine.collect()
    got = sorted(
        [
            (r.event_id, r.province_code, r.unit_code, r.period_id, r.indicator_code, r.rule, r.observed_value,
             r.expected, r.severity)
            for r in rows
        ],
        key=repr,
    )
    assert got == EXPECTED_QUARANTINE
    assert {r.run_id for r in rows} == {RUN_ID}
    assert quarantine.filter(F.col("quarantined_at") == F.lit(QUARANTINED_AT)).count() == len(rows)


def test_accepted_rows_drop_whole_reports(dirty: tuple[DataFrame, GateResult]) -> None:
    df, result = dirty
    quarantine = quarantine_rows(df, result, list(KEY_COLUMNS), RUN_ID, QUARANTINED_AT)
    accepted = accepted_rows(df, quarantine)
    assert accepted.columns == df.columns
    assert sorted(((r.event_id, r.indicator_code) for r in accepted.collect()), key=repr) == [
        ("ok-1", "ICT01"),
        ("ok-1", "ICT02"),
        ("ok-2", "ICT01"),
    ]


def test_quarantine_cross_checks_gx_unexpected_count(dirty: tuple[DataFrame, GateResult]) -> None:
    df, result = dirty
    rule = f"{BETWEEN}:numerator"
    assert [o.unexpected_count for o in result.outcomes if o.rule == rule] == [2]
    # Were GX to count three failing rows while reporting two, the gate must not trust it.
    tampered = dataclasses.replace(
        result,
        outcomes=tuple(
            dataclasses.replace(o, unexpected_count=3) if o.rule == rule else o for o in result.outcomes
        ),
    )
    with pytest.raises(QualityGateError, match=f"{rule}: quarantined 2 rows, GX unexpected_count 3"):
        quarantine_rows(df, tampered, list(KEY_COLUMNS), RUN_ID, QUARANTINED_AT)


# --------------------------------------------------------------------------- failing runs


def test_empty_batch_fails_the_run(spark: SparkSession, suite: ExpectationSuite) -> None:
    with pytest.raises(QualityGateError) as caught:
        run_suite(frame(spark, []), suite, list(KEY_COLUMNS))
    message = str(caught.value)
    assert "expect_table_row_count_to_be_between [min_value=1, max_value=None] failed: observed 0" in message
    assert caught.value.result is not None
    assert [o.rule for o in caught.value.result.batch_failures] == ["expect_table_row_count_to_be_between"]


def test_missing_column_fails_the_run(spark: SparkSession, suite: ExpectationSuite) -> None:
    df = frame(spark, [value_row("ev-1")]).drop("value_unit")
    with pytest.raises(QualityGateError, match="expect_table_columns_to_match_set .* failed: observed .*kafka_offset"):
        run_suite(df, suite, list(KEY_COLUMNS))


def test_expectation_that_raises_fails_the_run(spark: SparkSession, suite: ExpectationSuite) -> None:
    # A row rule on a column the batch lacks: GX catches the error, marks the expectation
    # failed and records exception_info, without raising; the gate must raise.
    configs = [e.configuration.to_json_dict() for e in suite.expectations]
    configs.append({"type": IN_SET, "kwargs": {"column": "unit_level", "value_set": ["commune"]},
                    "meta": {"severity": "quarantine"}})
    broken = ExpectationSuite(name="silver_report_values_broken", expectations=configs)
    assert len(broken.expectations) == 29
    with pytest.raises(QualityGateError, match=r'expect_column_values_to_be_in_set:unit_level: raised .*"unit_level"'):
        run_suite(frame(spark, [value_row("ev-1")]), broken, list(KEY_COLUMNS))


def test_missing_key_column_fails_the_run(spark: SparkSession, suite: ExpectationSuite) -> None:
    df = frame(spark, [value_row("ev-1")]).withColumnRenamed("indicator_code", "indicator")
    with pytest.raises(QualityGateError, match=r"key columns \['indicator_code'\] are not in the batch"):
        run_suite(df, suite, list(KEY_COLUMNS))
