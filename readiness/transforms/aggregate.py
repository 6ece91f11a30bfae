"""Silver indicator values -> gold tables (values per province, reporting completeness).

Ratios are always the ratio of summed numerators and denominators over the units of a province,
never the mean of unit ratios; counts and amounts are summed.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

REPORT_KEY = ["province_code", "unit_code", "report_type", "period_id"]


def latest_revisions(silver: DataFrame) -> DataFrame:
    """Keep only the winning report of each unit and period: highest revision, then latest
    submission, then event id (a stable tie-break)."""
    order = Window.partitionBy(*REPORT_KEY).orderBy(
        F.col("revision").desc(), F.col("submitted_at").desc(), F.col("event_id").desc())
    events = silver.select(*REPORT_KEY, "event_id", "revision", "submitted_at").distinct()
    winners = events.withColumn("_rank", F.row_number().over(order)).where(F.col("_rank") == 1).select("event_id")
    return silver.join(winners, "event_id", "left_semi")


def restate_provinces(values: DataFrame, province_map: DataFrame) -> DataFrame:
    """Replace former province codes by their 2025 province (``province_map``: former_code, code_2025)."""
    mapped = values.join(province_map, values.province_code == province_map.former_code, "left")
    return mapped.withColumn("province_code", F.coalesce("code_2025", "province_code")).drop("former_code", "code_2025")


def province_indicator_values(latest: DataFrame, catalogue: DataFrame, basis: str) -> DataFrame:
    """Value per province, indicator and period. ``catalogue``: code, rollup, scale."""
    grouped = latest.groupBy("province_code", "period_id", "report_type", "indicator_code").agg(
        F.sum("numerator").alias("numerator_sum"),
        F.sum("denominator").alias("denominator_sum"),
        F.sum("value").alias("value_sum"),
        F.countDistinct("unit_code").alias("units_reported"),
    )
    joined = grouped.join(catalogue.withColumnRenamed("code", "indicator_code"), "indicator_code")
    ratio = F.when(F.col("denominator_sum") > 0, F.col("numerator_sum") / F.col("denominator_sum") * F.col("scale"))
    return joined.select(
        "province_code", "period_id", "report_type", "indicator_code",
        F.lit(basis).alias("basis"),
        "numerator_sum", "denominator_sum",
        F.when(F.col("rollup") == "ratio_of_sums", ratio).otherwise(F.col("value_sum")).alias("value"),
        "units_reported",
    )


def reporting_completeness(expected_units: DataFrame, submissions: DataFrame, deadline_utc: str,
                           time_column: str = "submitted_at") -> DataFrame:
    """Expected, received, on time, late and missing reports per province.

    ``expected_units``: province_code, unit_code (units open at the end of the period's data window).
    ``submissions``: every decoded report of the period (accepted or not): province_code, unit_code
    and ``time_column``, the time that decides timeliness (the pipeline passes the broker's receipt
    time). A unit's first submission decides. Units that are not expected do not count, so rates
    never exceed 100 %.
    """
    first = submissions.groupBy("province_code", "unit_code").agg(F.min(time_column).alias("first_submitted_at"))
    joined = expected_units.join(first, ["province_code", "unit_code"], "left")
    deadline = F.to_timestamp(F.lit(deadline_utc))
    on_time = F.col("first_submitted_at").isNotNull() & (F.col("first_submitted_at") <= deadline)
    late = F.col("first_submitted_at").isNotNull() & (F.col("first_submitted_at") > deadline)
    result = joined.groupBy("province_code").agg(
        F.count("*").alias("expected"),
        F.count("first_submitted_at").alias("received"),
        F.sum(on_time.cast("int")).alias("on_time"),
        F.sum(late.cast("int")).alias("late"),
        F.sort_array(F.collect_list(F.when(F.col("first_submitted_at").isNull(), F.col("unit_code")))).alias("missing_units"),
    )
    return result.select(
        "province_code", "expected", "received",
        F.col("on_time").cast("long").alias("on_time"), F.col("late").cast("long").alias("late"),
        (F.col("expected") - F.col("received")).alias("missing"),
        F.round(F.col("received") / F.col("expected") * 100, 2).alias("received_rate"),
        F.round(F.col("on_time") / F.col("expected") * 100, 2).alias("on_time_rate"),
        "missing_units",
    )
