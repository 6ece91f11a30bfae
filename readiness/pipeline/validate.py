"""Validate: ``bronze_report_events`` of one period -> ``silver_indicator_values`` + ``silver_quarantine``.

Write, audit, publish: the period's candidate rows are conformed, audited by the Great Expectations
suite in ``expectations/``, and only then written. A failed batch-level expectation raises before
anything is written, so neither silver nor gold changes. A report is the unit of acceptance: if any
of its values fails a row rule, the whole report goes to quarantine (one row per failure) and the
province corrects it by sending a new revision.

Every row written is derived from the bronze snapshot read (its Delta version is recorded), so
rerunning a period over the same bronze data writes the same rows.
"""
from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from readiness import lake
from readiness.periods import Period, default_calendar, parse_period
from readiness.quality import KEY_COLUMNS, QUARANTINE_SCHEMA, accepted_rows, load_suite, quarantine_rows, run_suite
from readiness.settings import PROJECT_ROOT, Settings
from readiness.spark_session import get_spark
from readiness.tables import BRONZE_REPORTS, QUARANTINE, SILVER_VALUES, VALIDATION_RUN_SCHEMA, VALIDATION_RUNS
from readiness.pipeline.reference_frames import catalogue_frame
from readiness.reference import indicators, provinces_in_force, units_open_on
from readiness.transforms.conform import (add_rule_columns, duplicate_quarantine_rows, explode_values,
                                          split_duplicate_events)

SUITE_FILE = PROJECT_ROOT / "expectations" / "silver_report_values.json"
# Columns added only for the suite to check; silver keeps reported_value.
RULE_ONLY_COLUMNS = ("numerator_limit", "valid_min", "valid_max", "unit_key", "period_opens_at")


def suite_parameters(period: Period) -> dict[str, list[str]]:
    """Reference data in force for the period, bound into the suite's rules when the job loads it."""
    window_end = period.window()[1]
    return {
        "indicator_codes": sorted(i.code for i in indicators()),
        "province_codes": sorted(p.code for p in provinces_in_force(window_end)),
        "unit_keys": sorted(f"{u.province_code}|{u.code}" for u in units_open_on(window_end)),
    }


def _with_run(rows: DataFrame, run_id: str) -> DataFrame:
    return rows.withColumn("run_id", F.lit(run_id)).select(*QUARANTINE_SCHEMA.fieldNames())


def validate_period(settings: Settings, period_id: str) -> dict[str, int]:
    spark = get_spark(settings)
    bronze_version = lake.version(spark, settings, BRONZE_REPORTS)
    if bronze_version is None:
        raise RuntimeError(f"no {BRONZE_REPORTS} table under {settings.lake_dir}: run the ingest job first")
    bronze = lake.read(spark, settings, BRONZE_REPORTS, bronze_version).where(F.col("period_id") == period_id)
    first, later = split_duplicate_events(bronze)
    period = parse_period(period_id)
    opens_at = datetime.combine(period.window()[0], time(0), ZoneInfo(default_calendar().timezone))
    candidates = add_rule_columns(explode_values(first), catalogue_frame(spark), opens_at.isoformat()).persist()
    run_id = f"validate:{period_id}:bronze@{bronze_version}"
    # The newest arrival in the snapshot stands for "when": it is the same on every rerun.
    audited_at = candidates.agg(F.max("ingested_at")).collect()[0][0]

    suite = load_suite(SUITE_FILE, suite_parameters(period))
    result = run_suite(candidates, suite, KEY_COLUMNS)  # raises on a batch failure
    failed = quarantine_rows(candidates, result, KEY_COLUMNS, run_id, audited_at)
    quarantine = failed.unionByName(_with_run(duplicate_quarantine_rows(later), run_id)).persist()
    accepted = accepted_rows(candidates, failed).drop(*RULE_ONLY_COLUMNS)

    lake.replace_partition(accepted, settings, SILVER_VALUES, "period_id", period_id)
    lake.replace_partition(quarantine, settings, QUARANTINE, "period_id", period_id, lineage_columns=("run_id",))

    events_in = bronze.count()
    # A repeated delivery shares its event id with an accepted one, so count deliveries.
    events_quarantined = failed.select("event_id").distinct().count() + later.count()
    counts = {
        "events_in": events_in,
        "events_accepted": accepted.select("event_id").distinct().count(),
        "events_quarantined": events_quarantined,
        "rows_in": candidates.count(),
        "quarantine_rows": quarantine.count(),
        "bronze_version": bronze_version,
    }
    summary = [(period_id, run_id, o.rule, o.level, bool(o.success), int(o.unexpected_count or 0),
                counts["rows_in"], events_in, counts["events_accepted"], events_quarantined, audited_at)
               for o in result.outcomes]
    runs = spark.createDataFrame(summary, VALIDATION_RUN_SCHEMA)
    lake.replace_partition(runs, settings, VALIDATION_RUNS, "period_id", period_id)
    candidates.unpersist()
    quarantine.unpersist()
    return counts
