"""Kafka records -> decoded report rows and dead letters.

Decoding runs in a pandas UDF with the project's fastavro path (``readiness.encoding.decode``), so
Spark and the producer share one decoder. The UDF never raises on bad input: a message that cannot be
decoded gets a reason and a detail, and is routed to the dead-letter table by :func:`split_decoded`.
"""
from __future__ import annotations

import json

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType, StructField, StructType

from readiness.tables import KAFKA_COLUMNS, REPORT_PAYLOAD

DECODE_RESULT = StructType([
    StructField("writer_schema", StringType()),
    StructField("writer_fingerprint", StringType()),
    StructField("error_reason", StringType()),
    StructField("error_detail", StringType()),
    StructField("payload", StringType()),
])


def _payload(record: dict) -> str:
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


def decode_value(message: bytes | None) -> dict:
    from readiness.encoding import EventDecodeError, REPORT_SUBMISSION, decode

    try:
        record, writer = decode(message)
        if writer.full_name != REPORT_SUBMISSION:
            return {"writer_schema": writer.path.name, "writer_fingerprint": writer.fingerprint.hex(),
                    "error_reason": "wrong_event_type", "error_detail": f"{writer.full_name} on the reports topic",
                    "payload": None}
        return {"writer_schema": writer.path.name, "writer_fingerprint": writer.fingerprint.hex(),
                "error_reason": None, "error_detail": None, "payload": _payload(record)}
    except EventDecodeError as exc:
        return {"writer_schema": None, "writer_fingerprint": None, "error_reason": exc.reason,
                "error_detail": exc.detail, "payload": None}


@pandas_udf(DECODE_RESULT)
def _decode_udf(values: pd.Series) -> pd.DataFrame:
    return pd.DataFrame([decode_value(v) for v in values], columns=DECODE_RESULT.fieldNames())


def kafka_columns(kafka_df: DataFrame) -> DataFrame:
    """Rename the Kafka source's columns to the bronze names."""
    return kafka_df.select(
        F.col("topic"), F.col("partition"), F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("key").cast("string").alias("kafka_key"),
        F.col("value").alias("raw_value"),
    )


def decode_reports(raw: DataFrame, ingested_at: Column) -> DataFrame:
    """Add the decode result and the decoded report columns to rows with ``KAFKA_COLUMNS``."""
    decoded = raw.withColumn("_d", _decode_udf(F.col("raw_value"))).withColumn("ingested_at", ingested_at)
    payload = F.from_json(F.col("_d.payload"), REPORT_PAYLOAD)
    return decoded.select(
        *KAFKA_COLUMNS,
        F.col("_d.writer_schema").alias("writer_schema"),
        F.col("_d.writer_fingerprint").alias("writer_fingerprint"),
        F.col("_d.error_reason").alias("error_reason"),
        F.col("_d.error_detail").alias("error_detail"),
        payload.alias("report"),
        "ingested_at",
    )


def split_decoded(decoded: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(bronze rows, dead-letter rows) from :func:`decode_reports` output; every row lands in one."""
    bronze = decoded.where(F.col("error_reason").isNull()).select(
        *KAFKA_COLUMNS, "writer_schema", "writer_fingerprint",
        "report.event_id", "report.province_code", "report.unit_code", "report.unit_kind", "report.unit_name",
        "report.report_type", "report.period_id", "report.values", "report.revision",
        F.timestamp_millis(F.col("report.submitted_at_ms")).alias("submitted_at"),
        "report.source_system", "ingested_at",
    )
    dead = decoded.where(F.col("error_reason").isNotNull()).select(
        *KAFKA_COLUMNS, F.col("error_reason").alias("reason"), F.col("error_detail").alias("detail"), "ingested_at",
    )
    return bronze, dead
