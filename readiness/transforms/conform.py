"""Bronze report events -> silver candidate rows, one per reported indicator value."""
from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

EVENT_COLUMNS = ["event_id", "province_code", "unit_code", "unit_kind", "unit_name", "report_type",
                 "period_id", "revision", "submitted_at", "source_system", "topic", "partition", "offset",
                 "ingested_at"]
# The reported numbers a value carries; each must be finite (or absent).
NUMBER_FIELDS = ("numerator", "denominator", "value")
FINITE = "finite"


def split_duplicate_events(bronze: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(first delivery of each event id, later deliveries). First = lowest (partition, offset)."""
    order = Window.partitionBy("event_id").orderBy("partition", "offset")
    ranked = bronze.withColumn("_copy", F.row_number().over(order))
    first = ranked.where(F.col("_copy") == 1).drop("_copy")
    later = ranked.where(F.col("_copy") > 1).drop("_copy")
    return first, later


def split_redeliveries(first: DataFrame, later: DataFrame, content: str = "raw_value") -> tuple[DataFrame, DataFrame]:
    """(exact re-deliveries, conflicting re-uses) among the ``later`` deliveries of event ids in ``first``.

    Exact: the same bytes (``content``) as the event id's first delivery, e.g. a province resending
    a file after a broker failure; dropped and counted apart. Conflicting: the event id reused for
    other content; quarantined (:func:`duplicate_quarantine_rows`).
    """
    original = first.select(F.col("event_id").alias("_first_event_id"), F.col(content).alias("_first_content"))
    joined = later.join(original, later["event_id"].eqNullSafe(original["_first_event_id"]), "left")
    exact = F.coalesce(F.col(content) == F.col("_first_content"), F.lit(False))
    helpers = ("_first_event_id", "_first_content")
    return joined.where(exact).drop(*helpers), joined.where(~exact).drop(*helpers)


def explode_values(bronze: DataFrame) -> DataFrame:
    """One row per indicator value; a report with no values keeps one row with null indicator fields,
    so the quality gate sees it (and quarantines it) instead of it vanishing."""
    exploded = bronze.select(*EVENT_COLUMNS, F.explode_outer("values").alias("v"))
    return exploded.select(
        *EVENT_COLUMNS,
        F.col("v.indicator_code").alias("indicator_code"),
        F.col("v.numerator").alias("numerator"),
        F.col("v.denominator").alias("denominator"),
        F.col("v.value").alias("value"),
        F.col("v.unit").alias("value_unit"),
    )


def duplicate_quarantine_rows(later: DataFrame) -> DataFrame:
    """Quarantine rows for deliveries that reuse an event id already seen (with other content)."""
    return later.select(
        "event_id", "province_code", "unit_code", "period_id",
        F.lit(None).cast("string").alias("indicator_code"),
        F.lit("duplicate_event_id").alias("rule"),
        F.format_string("partition %d offset %d", "partition", "offset").alias("observed_value"),
        F.lit("event id not seen before").alias("expected"),
        F.lit("quarantine").alias("severity"),
        F.col("ingested_at").alias("quarantined_at"),
    )


def finite_numbers(fields: Sequence[str] = NUMBER_FIELDS) -> Column:
    """``FINITE`` when none of ``fields`` is NaN or infinite (absent is fine), else ``field=value`` of
    each one that is, comma-joined: ``denominator=Infinity``, ``numerator=NaN, value=-Infinity``."""
    found = [F.when(F.isnan(f) | (F.abs(f) == F.lit(float("inf"))), F.concat(F.lit(f"{f}="), F.col(f).cast("string")))
             for f in fields]
    joined = F.concat_ws(", ", *found)
    return F.when(joined == "", F.lit(FINITE)).otherwise(joined)


def add_rule_columns(values: DataFrame, catalogue: DataFrame, period_opens_at: str) -> DataFrame:
    """Columns the quality suite checks, derived from the catalogue and the period being validated.

    - ``numerator_limit``: the denominator where the catalogue says the numerator may not exceed it
      (shares of agencies, services, documents), else null (computers per 100 civil servants, counts);
    - ``reported_value``: the value as the catalogue defines it (ratio x scale, or the amount), with
      ``valid_min`` / ``valid_max`` its catalogue range;
    - ``unit_key``: ``province|unit``, checked against the units registered for the period;
    - ``period_opens_at``: when the period's data window opens (UTC); a report submitted before it
      is about a future period;
    - ``finite_numbers``: ``finite``, or which of numerator, denominator and value are NaN or
      infinite (:func:`finite_numbers`); an infinite denominator would otherwise make a ratio 0.
    """
    cat = catalogue.select(F.col("code").alias("_code"), "numerator_at_most_denominator", "scale",
                           F.col("min_value").alias("valid_min"), F.col("max_value").alias("valid_max"), "rollup")
    joined = values.join(F.broadcast(cat), values.indicator_code == cat._code, "left")
    ratio = F.when(F.col("denominator") > 0, F.col("numerator") / F.col("denominator") * F.col("scale"))
    return (joined
            .withColumn("numerator_limit", F.when(F.col("numerator_at_most_denominator"), F.col("denominator")))
            .withColumn("reported_value", F.when(F.col("rollup") == "ratio_of_sums", ratio).otherwise(F.col("value")))
            .withColumn("unit_key", F.concat_ws("|", "province_code", "unit_code"))
            .withColumn("period_opens_at", F.to_timestamp(F.lit(period_opens_at)))
            .withColumn("finite_numbers", finite_numbers())
            .drop("_code", "numerator_at_most_denominator", "scale", "rollup"))
