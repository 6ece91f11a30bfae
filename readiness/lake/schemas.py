"""Spark schemas of the decoded events and of the validation register, with their column meanings."""
from __future__ import annotations

from pyspark.sql.types import (
                               ArrayType,
                               BooleanType,
                               DoubleType,
                               IntegerType,
                               LongType,
                               StringType,
                               StructField,
                               StructType,
                               TimestampType,
)

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
