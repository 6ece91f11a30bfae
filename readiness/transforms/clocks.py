"""The two clocks of a report: the time the province declares (``submitted_at``) and the broker's
receipt time (``kafka_timestamp``, the topic's ``LogAppendTime``).

Timeliness is judged on the receipt time; the declared time is kept and compared with it. A report
declared later than it was received (beyond a clock skew) or far earlier gets a warning that
says so: a province's clock is wrong, or a report was backdated. The pipeline checks the accepted
reports (a quarantined report already carries its reason).
"""
from __future__ import annotations

from datetime import timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

DECLARED_AFTER_RECEIPT = "clock:declared_after_receipt"
DECLARED_LONG_BEFORE_RECEIPT = "clock:declared_long_before_receipt"


def clock_warnings(events: DataFrame, skew: timedelta, max_age: timedelta) -> DataFrame:
    """One warning per event whose declared time is more than ``skew`` after its receipt, or more
    than ``max_age`` before it. ``events``: event_id, province_code, unit_code, period_id,
    submitted_at, kafka_timestamp."""
    gap = F.unix_micros("kafka_timestamp") - F.unix_micros("submitted_at")  # receipt minus declared
    late_clock = gap < -int(skew.total_seconds() * 1e6)
    backdated = gap > int(max_age.total_seconds() * 1e6)
    flagged = events.where(late_clock | backdated)
    return flagged.select(
        "event_id", "province_code", "unit_code", "period_id",
        F.lit(None).cast("string").alias("indicator_code"),
        F.when(late_clock, F.lit(DECLARED_AFTER_RECEIPT)).otherwise(F.lit(DECLARED_LONG_BEFORE_RECEIPT)).alias("rule"),
        F.format_string("declared %s, received %s (UTC)", F.date_format("submitted_at", "yyyy-MM-dd HH:mm:ss"),
                        F.date_format("kafka_timestamp", "yyyy-MM-dd HH:mm:ss")).alias("observed_value"),
        F.lit(f"declared within {skew} after and {max_age} before the receipt; timeliness uses the receipt")
        .alias("expected"),
        F.lit("warn").alias("severity"),
    )
