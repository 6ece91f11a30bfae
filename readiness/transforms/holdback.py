"""The gate policy scoped to the province: a province over its quarantine share is held back.

Held back means its new reports wait: none of this run's accepted rows of that province is
published, its rows already published for the period stay as they are, and each report that waits
gets a ``held_back`` finding saying why. The other provinces publish normally.
"""
from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

HELD_BACK = "held_back"


def province_shares(events: DataFrame, quarantined: DataFrame) -> DataFrame:
    """``province_code, events, quarantined, share``: per province, its distinct event ids in
    ``events`` and how many of them have a row in ``quarantined``."""
    totals = (events.where(F.col("province_code").isNotNull()).groupBy("province_code")
              .agg(F.countDistinct("event_id").alias("events")))
    bad = quarantined.groupBy("province_code").agg(F.countDistinct("event_id").alias("quarantined"))
    return (totals.join(bad, "province_code", "left").fillna(0, ["quarantined"])
            .withColumn("share", F.col("quarantined") / F.col("events")))


def over_share(shares: DataFrame, max_share: float, min_events: int) -> DataFrame:
    """The provinces of ``shares`` with at least ``min_events`` events and more than ``max_share`` quarantined."""
    return shares.where((F.col("events") >= min_events) & (F.col("share") > max_share))


def _in(provinces: Sequence[str]) -> Column:
    return F.coalesce(F.col("province_code").isin(list(provinces)), F.lit(False))


def hold_back(accepted: DataFrame, published: DataFrame, held: Sequence[str]) -> tuple[DataFrame, DataFrame]:
    """(rows to publish, rows held back).

    ``accepted``: the rows this run accepted; ``published``: the rows already published for the
    same period (a superset of ``accepted``'s columns); ``held``: the province codes held back.
    To publish: the other provinces' accepted rows plus the held provinces' published rows as they
    are. Held back: the held provinces' accepted rows whose report is not published already.
    """
    kept = published.where(_in(held)).select(*accepted.columns)
    rows = accepted.where(~_in(held)).unionByName(kept)
    waiting = accepted.where(_in(held)).join(kept.select("event_id").distinct(), "event_id", "left_anti")
    return rows, waiting


def held_back_findings(waiting: DataFrame, over: DataFrame, max_share: float, min_events: int) -> DataFrame:
    """One ``held_back`` finding per report held back, with its province's counts and share."""
    reports = waiting.select("event_id", "province_code", "unit_code", "period_id").distinct()
    return reports.join(over, "province_code").select(
        "event_id", "province_code", "unit_code", "period_id",
        F.lit(None).cast("string").alias("indicator_code"),
        F.lit(HELD_BACK).alias("rule"),
        F.format_string("province %s: %d of %d reports quarantined (%.1f %%)", "province_code", "quarantined",
                        "events", F.col("share") * 100).alias("observed_value"),
        F.lit(f"at most {max_share:.0%} of a province's reports quarantined "
              f"(gate policy, from {min_events} reports)").alias("expected"),
        F.lit("high").alias("severity"),
    )
