"""The gate policy scoped to the province, on tiny DataFrames with the expected rows written out."""
from __future__ import annotations

from readiness.transforms.holdback import held_back_findings, hold_back, over_share, province_shares

EVENTS = "event_id string, province_code string"
FINDINGS = "event_id string, province_code string, rule string"
ROWS = "event_id string, province_code string, unit_code string, period_id string, revision int, indicator_code string"


def test_shares_count_distinct_reports_and_only_provinces_over_the_limit_with_enough_reports(spark):
    # 38: 6 of 10 reports quarantined (one report broke two rules); 25: 5 of 10; 01: 3 of 3, too few reports.
    events = spark.createDataFrame(
        [(f"a{n}", "38") for n in range(10)] + [(f"b{n}", "25") for n in range(10)] + [(f"c{n}", "01") for n in range(3)]
        + [(None, None)], EVENTS)
    failed = spark.createDataFrame(
        [(f"a{n}", "38", "r1") for n in range(6)] + [("a0", "38", "r2")] + [(f"b{n}", "25", "r1") for n in range(5)]
        + [(f"c{n}", "01", "r1") for n in range(3)], FINDINGS)
    shares = province_shares(events, failed)
    assert sorted(tuple(r) for r in shares.collect()) == [("01", 3, 3, 1.0), ("25", 10, 5, 0.5), ("38", 10, 6, 0.6)]
    assert [tuple(r) for r in over_share(shares, 0.5, 10).collect()] == [("38", 10, 6, 0.6)]


def test_a_held_province_keeps_its_published_rows_and_its_new_reports_wait(spark):
    accepted = spark.createDataFrame([
        ("e1", "38", "38.S01", "2026Q3", 0, "share"),  # already published: stays published
        ("e2", "38", "38.S01", "2026Q3", 1, "share"),  # its correction: waits
        ("e3", "38", "38.S02", "2026Q3", 0, "share"),  # new: waits
        ("e4", "25", "25.S01", "2026Q3", 0, "share"),  # another province: published
    ], ROWS)
    published = spark.createDataFrame([
        ("e1", "38", "38.S01", "2026Q3", 0, "share"),
        ("e0", "38", "38.S09", "2026Q3", 0, "share"),  # published earlier, not accepted this run: kept as it was
        ("e9", "25", "25.S01", "2026Q3", 0, "share"),  # 25 is not held: its rows come from this run
    ], ROWS)
    rows, waiting = hold_back(accepted, published, ["38"])
    assert rows.columns == accepted.columns
    assert sorted(r.event_id for r in rows.collect()) == ["e0", "e1", "e4"]
    assert sorted(r.event_id for r in waiting.collect()) == ["e2", "e3"]


def test_nothing_held_publishes_every_accepted_row(spark):
    accepted = spark.createDataFrame([("e1", "38", "38.S01", "2026Q3", 0, "share")], ROWS)
    rows, waiting = hold_back(accepted, accepted.limit(0), [])
    assert [r.event_id for r in rows.collect()] == ["e1"]
    assert waiting.count() == 0


def test_one_held_back_finding_per_report_with_the_provinces_counts_and_share(spark):
    waiting = spark.createDataFrame([
        ("e2", "38", "38.S01", "2026Q3", 1, "share"),
        ("e2", "38", "38.S01", "2026Q3", 1, "per_100"),  # two values, one report
        ("e3", "38", "38.S02", "2026Q3", 0, "share"),
    ], ROWS)
    over = spark.createDataFrame([("38", 14, 8, 8 / 14)], "province_code string, events long, quarantined long, "
                                                         "share double")
    got = held_back_findings(waiting, over, 0.5, 10).orderBy("event_id").collect()
    expected = "at most 50% of a province's reports quarantined (gate policy, from 10 reports)"
    assert [tuple(r) for r in got] == [
        ("e2", "38", "38.S01", "2026Q3", None, "held_back", "province 38: 8 of 14 reports quarantined (57.1 %)",
         expected, "high"),
        ("e3", "38", "38.S02", "2026Q3", None, "held_back", "province 38: 8 of 14 reports quarantined (57.1 %)",
         expected, "high"),
    ]
