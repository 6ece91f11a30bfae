"""Province plan targets -> attainment per province, indicator and period."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def latest_targets(plans: DataFrame, plan_year: int) -> DataFrame:
    """One row per province and indicator from each province's latest plan revision for the year."""
    order = Window.partitionBy("province_code", "plan_year").orderBy(
        F.col("revision").desc(), F.col("submitted_at").desc(), F.col("event_id").desc())
    latest = (plans.where(F.col("plan_year") == plan_year)
              .withColumn("_rank", F.row_number().over(order)).where(F.col("_rank") == 1))
    return latest.select("province_code", "plan_year", "plan_reference", F.col("event_id").alias("plan_event_id"),
                         "revision", F.explode("targets").alias("t")).select(
        "province_code", "plan_year", "plan_reference", "plan_event_id", F.col("revision").alias("plan_revision"),
        "t.indicator_code", "t.target_value", "t.comparison")


def attainment(targets: DataFrame, values: DataFrame) -> DataFrame:
    """Actual against target. ``values``: province_code, indicator_code, value (one basis, one period).

    ratio: actual / target for "at_least" targets, target / actual for "at_most" ones (so above 1 is
    better in both); on_track: the target is met. A target whose indicator has no actual value
    keeps its row with status ``no_actual`` rather than disappearing.
    """
    joined = targets.join(values.select("province_code", "indicator_code", F.col("value").alias("actual")),
                          ["province_code", "indicator_code"], "left")
    at_least = F.col("comparison") == "at_least"
    ratio = (F.when(at_least & (F.col("target_value") > 0), F.col("actual") / F.col("target_value"))
             .when(~at_least & (F.col("actual") > 0), F.col("target_value") / F.col("actual"))
             .when(~at_least & (F.col("actual") == 0), F.lit(1.0)))
    on_track = F.when(at_least, F.col("actual") >= F.col("target_value")).otherwise(F.col("actual") <= F.col("target_value"))
    return joined.select(
        "province_code", "indicator_code", "plan_year", "plan_reference", "plan_event_id", "plan_revision",
        "comparison", "target_value", "actual",
        F.round(ratio, 4).alias("attainment_ratio"),
        F.when(F.col("actual").isNull(), None).otherwise(on_track).alias("on_track"),
        F.when(F.col("actual").isNull(), "no_actual").when(on_track, "on_track").otherwise("behind").alias("status"),
    )
