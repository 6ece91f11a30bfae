"""Kafka records -> decoded report rows and dead letters.

Decoding runs in a pandas UDF with the project's fastavro path (``readiness.contracts.encoding.decode``), so
Spark and the producer share one decoder. The UDF never raises on bad input: a message that cannot be
decoded, or whose record breaks a bound of :mod:`readiness.transforms.payload_checks` (a period that is
not a period id, an over-long string, a control character), gets a reason and a detail, and is routed
to the dead-letter table by :func:`split_decoded`.
"""
from __future__ import annotations

import json

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType, StructField, StructType

from readiness.lake.schemas import REPORT_PAYLOAD, TARGET_PAYLOAD
from readiness.lake.tables import KAFKA_COLUMNS

DECODE_RESULT = StructType([
    StructField("event_type", StringType()),
    StructField("writer_schema", StringType()),
    StructField("writer_fingerprint", StringType()),
    StructField("error_reason", StringType()),
    StructField("error_detail", StringType()),
    StructField("payload", StringType()),
])


def _report_payload(record: dict) -> str:
    unit = record["reporting_unit"]
    return json.dumps({
        "event_id": str(record["event_id"]),
        "province_code": record["province_code"],
        "unit_code": unit["code"],
        "unit_kind": unit["kind"].lower(),
        "unit_name": unit.get("name"),
        "report_type": record["report_type"].lower(),
        "period_id": record["period"],
        "values": record["values"],
        "revision": record["revision"],
        "submitted_at_ms": int(record["submitted_at"].timestamp() * 1000),
        "source_system": record["source_system"],
    }, ensure_ascii=False)


def _target_payload(record: dict) -> str:
    return json.dumps({
        "event_id": str(record["event_id"]),
        "province_code": record["province_code"],
        "plan_year": record["plan_year"],
        "plan_reference": record.get("plan_reference"),
        "targets": [{**t, "comparison": t["comparison"].lower()} for t in record["targets"]],
        "revision": record["revision"],
        "submitted_at_ms": int(record["submitted_at"].timestamp() * 1000),
        "source_system": record["source_system"],
    }, ensure_ascii=False)


def decode_value(message: bytes | None) -> dict:
    """Decode one message; never raises. ``event_type`` is ``report`` or ``target_plan``."""
    from readiness.contracts.encoding import REPORT_SUBMISSION, TARGET_PLAN, EventDecodeError, decode
    from readiness.transforms.payload_checks import record_problem

    try:
        record, writer = decode(message)
    except EventDecodeError as exc:
        return {"event_type": None, "writer_schema": None, "writer_fingerprint": None,
                "error_reason": exc.reason, "error_detail": exc.detail, "payload": None}
    known = {"event_type": None, "writer_schema": writer.path.name, "writer_fingerprint": writer.fingerprint.hex(),
             "error_reason": None, "error_detail": None, "payload": None}
    problem = record_problem(record)
    if problem is not None:
        return {**known, "error_reason": problem[0], "error_detail": problem[1]}
    if writer.full_name == REPORT_SUBMISSION:
        return {**known, "event_type": "report", "payload": _report_payload(record)}
    if writer.full_name == TARGET_PLAN:
        return {**known, "event_type": "target_plan", "payload": _target_payload(record)}
    return {**known, "error_reason": "unsupported_event_type", "error_detail": f"no handler for {writer.full_name}"}


@pandas_udf(DECODE_RESULT)
def _decode_udf(values: pd.Series) -> pd.DataFrame:
    return pd.DataFrame([decode_value(v) for v in values], columns=DECODE_RESULT.fieldNames())


def kafka_columns(kafka_df: DataFrame) -> DataFrame:
    """Rename the Kafka source's columns to the bronze names (headers: ``includeHeaders``)."""
    return kafka_df.select(
        F.col("topic"), F.col("partition"), F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("key").cast("string").alias("kafka_key"),
        F.col("value").alias("raw_value"),
        F.col("headers").alias("kafka_headers"),
    )


def decode_messages(raw: DataFrame, ingested_at: Column) -> DataFrame:
    """Add the decode result (event type, writer schema, error, JSON payload) to rows with ``KAFKA_COLUMNS``
    (other columns, such as ``kafka_headers``, are kept)."""
    decoded = raw.withColumn("_d", _decode_udf(F.col("raw_value"))).withColumn("ingested_at", ingested_at)
    return decoded.select(*raw.columns, "_d.*", "ingested_at")


def split_decoded(decoded: DataFrame) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(report rows, target-plan rows, dead letters) from :func:`decode_messages`; every row lands in one.

    The signature evidence (``kafka_headers``, ``key_id``), when the rows carry it, is kept in all three.
    """
    ok = F.col("error_reason").isNull()
    evidence = [c for c in ("kafka_headers", "key_id") if c in decoded.columns]
    report = F.from_json(F.col("payload"), REPORT_PAYLOAD).alias("r")
    reports = decoded.where(ok & (F.col("event_type") == "report")).select(
        *KAFKA_COLUMNS, *evidence, "writer_schema", "writer_fingerprint", report, "ingested_at").select(
        *KAFKA_COLUMNS, *evidence, "writer_schema", "writer_fingerprint",
        "r.event_id", "r.province_code", "r.unit_code", "r.unit_kind", "r.unit_name",
        "r.report_type", "r.period_id", "r.values", "r.revision",
        F.timestamp_millis(F.col("r.submitted_at_ms")).alias("submitted_at"),
        "r.source_system", "ingested_at",
    )
    target = F.from_json(F.col("payload"), TARGET_PAYLOAD).alias("t")
    targets = decoded.where(ok & (F.col("event_type") == "target_plan")).select(
        *KAFKA_COLUMNS, *evidence, "writer_schema", "writer_fingerprint", target, "ingested_at").select(
        *KAFKA_COLUMNS, *evidence, "writer_schema", "writer_fingerprint",
        "t.event_id", "t.province_code", "t.plan_year", "t.plan_reference", "t.targets", "t.revision",
        F.timestamp_millis(F.col("t.submitted_at_ms")).alias("submitted_at"),
        "t.source_system", "ingested_at",
    )
    dead = decoded.where(~ok).select(
        *KAFKA_COLUMNS, *evidence, F.col("error_reason").alias("reason"), F.col("error_detail").alias("detail"),
        "ingested_at",
    )
    return reports, targets, dead
