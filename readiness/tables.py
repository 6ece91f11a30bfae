"""Names and schemas of the Delta tables, layer by layer, with column comments (units, time zones)."""
from __future__ import annotations

from pyspark.sql.types import (ArrayType, BinaryType, DoubleType, IntegerType, LongType, StringType,
                               StructField, StructType, TimestampType, BooleanType)

BRONZE_REPORTS = "bronze_report_events"
DEAD_LETTERS = "bronze_dead_letters"
BRONZE_TARGETS = "bronze_target_plans"
SILVER_VALUES = "silver_indicator_values"
QUARANTINE = "silver_quarantine"
WARNINGS = "silver_warnings"
VALIDATION_RUNS = "silver_validation_runs"
GOLD_VALUES = "gold_indicator_values"
GOLD_INDEX = "gold_readiness_index"
GOLD_COMPLETENESS = "gold_reporting_completeness"
GOLD_ATTAINMENT = "gold_target_attainment"

INDICATOR_VALUE = StructType([
    StructField("indicator_code", StringType()),
    StructField("numerator", DoubleType()),
    StructField("denominator", DoubleType()),
    StructField("value", DoubleType()),
    StructField("unit", StringType()),
])

# The decoded report as the ingest job carries it from the Avro record to bronze columns.
REPORT_PAYLOAD = StructType([
    StructField("event_id", StringType()),
    StructField("province_code", StringType()),
    StructField("unit_code", StringType()),
    StructField("unit_kind", StringType()),
    StructField("unit_name", StringType()),
    StructField("report_type", StringType()),
    StructField("period_id", StringType()),
    StructField("values", ArrayType(INDICATOR_VALUE)),
    StructField("revision", IntegerType()),
    StructField("submitted_at_ms", LongType()),
    StructField("source_system", StringType()),
])

TARGET_PAYLOAD = StructType([
    StructField("event_id", StringType()),
    StructField("province_code", StringType()),
    StructField("plan_year", IntegerType()),
    StructField("plan_reference", StringType()),
    StructField("targets", ArrayType(StructType([
        StructField("indicator_code", StringType()),
        StructField("target_value", DoubleType()),
        StructField("comparison", StringType()),
    ]))),
    StructField("revision", IntegerType()),
    StructField("submitted_at_ms", LongType()),
    StructField("source_system", StringType()),
])

KAFKA_COLUMNS = ["topic", "partition", "offset", "kafka_timestamp", "kafka_key", "raw_value"]

QUARANTINE_COLUMNS = ["event_id", "province_code", "unit_code", "period_id", "indicator_code", "rule",
                      "observed_value", "expected", "severity", "quarantined_at"]

VALIDATION_RUN_SCHEMA = StructType([
    StructField("period_id", StringType()),
    StructField("run_id", StringType()),
    StructField("rule", StringType()),
    StructField("level", StringType()),
    StructField("action", StringType()),
    StructField("success", BooleanType()),
    StructField("unexpected_count", LongType()),
    StructField("rows_in", LongType()),
    StructField("events_in", LongType()),
    StructField("events_accepted", LongType()),
    StructField("events_quarantined", LongType()),
    StructField("warnings", LongType()),
    StructField("validated_at", TimestampType()),
])
