"""Outliers against a unit's own history: the modified z-score on the median and MAD.

z = 0.6745 (x - median) / MAD (Iglewicz and Hoaglin). A value is flagged when |z| exceeds the
threshold and the unit has at least ``min_history`` earlier periods with a non-zero MAD; flagged
values are warnings with the history they were compared with, never rejections.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

SERIES = ["unit_code", "indicator_code", "report_type"]


def outlier_warnings(current: DataFrame, history: DataFrame, threshold: float, min_history: int,
                     max_history: int) -> DataFrame:
    """``current``: event_id, province_code, unit_code, period_id, report_type, indicator_code,
    reported_value. ``history``: unit_code, indicator_code, report_type, period_id, reported_value,
    one row per earlier period (the accepted, latest revision)."""
    recent = (history.where(F.col("reported_value").isNotNull())
              .withColumn("_n", F.row_number().over(Window.partitionBy(*SERIES).orderBy(F.col("period_id").desc())))
              .where(F.col("_n") <= max_history))
    medians = recent.groupBy(*SERIES).agg(
        F.percentile("reported_value", 0.5).alias("median"), F.count("*").alias("n"),
        F.sort_array(F.collect_list("reported_value")).alias("history"))
    mads = (recent.join(medians, SERIES)
            .groupBy(*SERIES).agg(F.percentile(F.abs(F.col("reported_value") - F.col("median")), 0.5).alias("mad")))
    stats = medians.join(mads, SERIES).where((F.col("n") >= min_history) & (F.col("mad") > 0))
    scored = (current.where(F.col("reported_value").isNotNull()).join(stats, SERIES)
              .withColumn("modified_z", F.lit(0.6745) * (F.col("reported_value") - F.col("median")) / F.col("mad")))
    flagged = scored.where(F.abs(F.col("modified_z")) > threshold)
    return flagged.select(
        "event_id", "province_code", "unit_code", "period_id", "indicator_code",
        F.lit("outlier:modified_z_score").alias("rule"),
        F.format_string("%.4f (modified z %.2f)", "reported_value", "modified_z").alias("observed_value"),
        F.format_string("|modified z| <= %.1f against median %.4f, MAD %.4f of history %s", F.lit(threshold),
                        "median", "mad", F.col("history").cast("string")).alias("expected"),
        F.lit("warn").alias("severity"),
    )
