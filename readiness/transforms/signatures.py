"""Decoded Kafka records -> the same records with the verdict of their signature.

A message is accepted only if its key is registered for the report's province, was valid at the
broker's receipt time (the record's ``LogAppendTime`` timestamp) and not revoked before it, and
the signature matches the exact bytes; its Kafka key must be the report's province code. A
refused message gets ``error_reason`` (one of :data:`readiness.contracts.signing.REASONS`) and a
detail, so :func:`readiness.transforms.decode.split_decoded` sends it to the dead letters with its
raw bytes and headers. Signature failures take precedence over decode errors: a flipped byte is
``bad_signature`` whatever the decoder made of it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType, StructField, StructType

from readiness.contracts.signing import check_binding, check_signature, header_map

VERDICT = StructType([
    StructField("reason", StringType()),
    StructField("detail", StringType()),
    StructField("key_id", StringType()),
])


def verdict(snapshot: Mapping[str, Sequence], value: bytes | None, headers, province: str | None,
            kafka_key: str | None, received_ms: int) -> tuple[str | None, str | None, str | None]:
    """``(reason, detail, key_id)`` of one message; reason None: accepted. ``province``: the
    decoded report's province code, None when the message did not decode."""
    reason, detail, key_id = check_signature(snapshot, header_map(headers), value)
    if reason is not None or province is None:  # refused, or not decoded (the decode error stands)
        return reason, detail, key_id
    reason, detail = check_binding(snapshot, key_id, province, kafka_key, received_ms)
    return reason, detail, key_id


def _headers(cell) -> list[tuple[str, bytes | None]]:
    if cell is None:
        return []
    return [(h["key"], None if h["value"] is None else bytes(h["value"])) for h in cell]


def verify_signatures(decoded: DataFrame, snapshot: Mapping[str, Sequence]) -> DataFrame:
    """Set ``error_reason``/``error_detail`` of refused messages and add ``key_id``.

    ``decoded`` has the Kafka columns (with ``kafka_headers``) and the decode result of
    :func:`readiness.transforms.decode.decode_messages`; ``snapshot`` is
    :meth:`readiness.contracts.signing.KeyRegistry.snapshot`.
    """
    keys = dict(snapshot)

    @pandas_udf(VERDICT)
    def _verify(values: pd.Series, headers: pd.Series, provinces: pd.Series, kafka_keys: pd.Series,
                received_ms: pd.Series) -> pd.DataFrame:
        rows = [verdict(keys, v, _headers(h), p, k, int(t))
                for v, h, p, k, t in zip(values, headers, provinces, kafka_keys, received_ms)]
        return pd.DataFrame(rows, columns=VERDICT.fieldNames())

    # The decoder's payload already holds the province: read it there, not by parsing it again.
    # A decoded payload without one (the contract forbids it) still gets the binding check.
    province = F.when(F.col("payload").isNotNull(),
                      F.coalesce(F.get_json_object("payload", "$.province_code"), F.lit("")))
    checked = decoded.withColumn("_v", _verify(F.col("raw_value"), F.col("kafka_headers"), province,
                                               F.col("kafka_key"), F.unix_millis(F.col("kafka_timestamp"))))
    refused = F.col("_v.reason").isNotNull()
    return (checked
            .withColumn("error_reason", F.when(refused, F.col("_v.reason")).otherwise(F.col("error_reason")))
            .withColumn("error_detail", F.when(refused, F.col("_v.detail")).otherwise(F.col("error_detail")))
            .withColumn("key_id", F.col("_v.key_id"))
            .drop("_v"))
