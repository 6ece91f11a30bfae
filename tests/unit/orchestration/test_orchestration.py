"""Pure orchestration logic: period-close decisions, changed periods, freezing plans, locks."""
from __future__ import annotations

import json
import threading
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from readiness.domain.periods import CALENDAR_FILE, ReportingCalendar
from readiness.domain.scoring import resolve_methodology, shipped_methodologies
from readiness.lake.log import lake_versions, table_version, versions_written
from readiness.orchestration.calendar import (
    changed_periods,
    close_day,
    next_close_days,
    periods_closing_on,
    periods_from_events,
    periods_to_close,
    sort_periods,
)
from readiness.orchestration.dag_support import default_args
from readiness.orchestration.freezes import gold_tables, missing_by_province, plan_freeze
from readiness.orchestration.locks import lock, period_lock
from readiness.settings import load_settings

UTC = timezone.utc


# --------------------------------------------------------------------------------------------
# Period close: the day after the due date, in Asia/Ho_Chi_Minh


@pytest.mark.parametrize("day, expected", [
    (date(2026, 3, 21), ["2026Q1"]),            # Q1 due 20 March
    (date(2026, 3, 20), []),                    # the due date itself: still open
    (date(2026, 6, 15), ["2026S1"]),            # S1 due 14 June
    (date(2026, 6, 21), ["2026Q2"]),
    (date(2026, 9, 21), ["2026Q3"]),
    (date(2026, 12, 15), ["2026S2"]),
    (date(2026, 12, 21), ["2026Q4", "2026"]),   # the fourth quarter and the year close together
    (date(2027, 1, 1), []),
    (date(2026, 11, 22), []),
])
def test_periods_closing_on(day, expected):
    assert [p.id for p in periods_closing_on(day)] == expected


def test_the_close_day_is_the_local_day_in_hanoi():
    # 01:00 in Hanoi on 21 September is 18:00 UTC on 20 September: the close runs for Q3.
    assert periods_to_close(datetime(2026, 9, 20, 18, 0, tzinfo=UTC)) == ["2026Q3"]
    # 16:59 UTC on 20 September is 23:59 in Hanoi, still the due date: nothing closes.
    assert periods_to_close(datetime(2026, 9, 20, 16, 59, tzinfo=UTC)) == []
    # 17:00 UTC on 20 September is midnight in Hanoi: Q3 closes.
    assert periods_to_close(datetime(2026, 9, 20, 17, 0, tzinfo=UTC)) == ["2026Q3"]
    with pytest.raises(ValueError):
        close_day(datetime(2026, 9, 21, 1, 0))  # naive: which zone?


def test_a_requested_period_closes_whatever_the_day():
    assert periods_to_close(datetime(2026, 11, 22, 18, 0, tzinfo=UTC), "2026Q3") == ["2026Q3"]
    with pytest.raises(ValueError):
        periods_to_close(datetime(2026, 11, 22, 18, 0, tzinfo=UTC), "2026Q5")


def test_due_dates_come_from_the_calendar_data():
    config = json.loads(CALENDAR_FILE.read_text())
    config["report_types"]["quarterly"]["due"]["Q3"] = {"month": 10, "day": 5}
    config["report_types"]["yearly"]["due"]["Y"] = {"month": 1, "day": 15, "year_offset": 1}
    calendar = ReportingCalendar(config)
    assert [p.id for p in periods_closing_on(date(2026, 9, 21), calendar)] == []
    assert [p.id for p in periods_closing_on(date(2026, 10, 6), calendar)] == ["2026Q3"]
    # A yearly report due in January of the next year closes the year before.
    assert [p.id for p in periods_closing_on(date(2027, 1, 16), calendar)] == ["2026"]
    assert periods_to_close(datetime(2026, 10, 5, 18, 0, tzinfo=UTC), calendar=calendar) == ["2026Q3"]


def test_next_close_days():
    assert next_close_days(date(2026, 9, 22), 3) == [
        (date(2026, 12, 15), ["2026S2"]), (date(2026, 12, 21), ["2026Q4", "2026"]), (date(2027, 3, 21), ["2027Q1"])]


# --------------------------------------------------------------------------------------------
# Changed periods from the Delta log


def _commit(log: Path, version: int, actions: list[dict]) -> None:
    log.mkdir(parents=True, exist_ok=True)
    (log / f"{version:020d}.json").write_text("\n".join(json.dumps(a) for a in actions) + "\n")


def _add(period: str | None, name: str) -> dict:
    values = {} if period is None else {"period_id": period}
    return {"add": {"path": f"period_id={period}/{name}.parquet", "partitionValues": values, "size": 1,
                    "modificationTime": 0, "dataChange": True}}


@pytest.fixture()
def lake(tmp_path):
    settings = load_settings(var_dir=tmp_path / "var")
    log = Path(settings.table_path("bronze_report_events")) / "_delta_log"
    _commit(log, 0, [{"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}, {"metaData": {"id": "x"}},
                     _add("2026Q2", "a")])
    _commit(log, 1, [{"commitInfo": {"operation": "WRITE"}}, _add("2026Q3", "b"), _add("2026Q2", "c")])
    _commit(log, 2, [{"txn": {"appId": "readiness-ingest-bronze", "version": 2}}, _add("2026S1", "d")])
    _commit(log, 3, [{"commitInfo": {"operation": "WRITE"}}, _add("2026Q3", "e"), _add(None, "f"),
                     {"remove": {"path": "period_id=2025Q4/old.parquet", "partitionValues": {"period_id": "2025Q4"}}}])
    (log / "00000000000000000002.checkpoint.parquet").write_bytes(b"")  # not a commit: ignored
    other = Path(settings.table_path("gold_indicator_values")) / "_delta_log"
    _commit(other, 0, [_add("2026Q3", "g")])
    _commit(other, 1, [_add("2026Q3", "h")])
    return settings


def test_table_versions_from_the_log(lake):
    assert table_version(Path(lake.table_path("bronze_report_events"))) == 3
    assert table_version(Path(lake.table_path("no_such_table"))) is None
    assert lake_versions(lake) == {"bronze_report_events": 3, "gold_indicator_values": 1}
    assert versions_written({"bronze_report_events": 3, "gold_indicator_values": 0},
                                 lake_versions(lake)) == {"gold_indicator_values": 1}


def test_changed_periods_between_versions(lake):
    # Only what commits 2 and 3 added, in data-window order (S1 ends 14 June, Q3 14 September).
    assert changed_periods(lake, 1, 3) == ["2026S1", "2026Q3"]
    assert changed_periods(lake, 2, 3) == ["2026Q3"]             # a removed file is no new data
    assert changed_periods(lake, None, 0) == ["2026Q2"]          # a new table: from version 0
    assert changed_periods(lake, None) == ["2026Q2", "2026S1", "2026Q3"]  # same window end: quarter first
    assert changed_periods(lake, 3, 3) == []
    with pytest.raises(FileNotFoundError):  # a commit cleaned up from the log: cannot tell
        changed_periods(lake, 3, 4)


def test_periods_from_asset_events():
    extras = [{"periods": ["2026Q3", "2026Q2"], "bronze_version": 4}, {"periods": ["2026Q3", "2026"]}, None, {}]
    # Window order: 2026Q2 ends 14 June, 2026Q3 on 14 September, the year on 14 December.
    assert periods_from_events(extras) == ["2026Q2", "2026Q3", "2026"]
    assert periods_from_events([], ["2026S1", "bad"]) == ["2026S1"]
    assert sort_periods(["2026", "2026Q4", "2026S2", "2025Q4"]) == ["2025Q4", "2026Q4", "2026S2", "2026"]


# --------------------------------------------------------------------------------------------
# Freezing


@pytest.mark.parametrize("existing, current, refreeze, expected", [
    ({}, {"gold_a": 3, "gold_b": 5}, False, {"gold_a": 3, "gold_b": 5}),          # first close: freeze
    ({"gold_a": 3, "gold_b": 5}, {"gold_a": 7, "gold_b": 8}, False, None),        # closed again: keep
    ({"gold_a": 3}, {"gold_a": 7, "gold_c": 1}, False, {"gold_a": 3, "gold_c": 1}),  # a new gold table joins
    ({"gold_a": 3, "gold_b": 5}, {"gold_a": 7, "gold_b": 8}, True, {"gold_a": 7, "gold_b": 8}),  # refreeze
    ({"gold_a": 7}, {"gold_a": 7}, True, None),                                    # refreeze, nothing new
    ({}, {}, False, None),                                                         # no gold table yet
])
def test_plan_freeze(existing, current, refreeze, expected):
    assert plan_freeze(existing, current, refreeze) == expected


def test_gold_tables_exclude_the_freeze_register():
    versions = {"bronze_report_events": 9, "gold_indicator_values": 4, "gold_period_freezes": 2,
                "gold_target_attainment": 1, "silver_indicator_values": 3}
    assert gold_tables(versions) == {"gold_indicator_values": 4, "gold_target_attainment": 1}


def test_missing_by_province():
    rows = [("38", ["38.S03", "38.S01"]), ("25", []), ("01", None), ("38", ["38.S03", "38.S09"])]
    assert missing_by_province(rows) == {"38": ["38.S01", "38.S03", "38.S09"]}


# --------------------------------------------------------------------------------------------
# Methodology parameter


SHIPPED = {"ict-index": "1", "dti-2022": "1"}


@pytest.mark.parametrize("spec, expected", [
    (None, None), ("", None), ("ict-index", ("ict-index", "1")), ("ict-index.v1", ("ict-index", "1")),
    ("dti-2022.v1", ("dti-2022", "1")), ("dti-2022", ("dti-2022", "1")),
])
def test_resolve_methodology(spec, expected):
    assert resolve_methodology(spec, SHIPPED) == expected


@pytest.mark.parametrize("spec, message", [
    ("ict-index.v2", "methodology ict-index version 2 is not the shipped version 1"),
    ("nope", "unknown methodology 'nope'; shipped: dti-2022, ict-index"),
    ("ICT index", "is not of the form"),
])
def test_resolve_methodology_rejects(spec, message):
    with pytest.raises(ValueError, match=message):
        resolve_methodology(spec, SHIPPED)


def test_shipped_methodologies_include_ict_index():
    assert shipped_methodologies()["ict-index"] == "1"


# --------------------------------------------------------------------------------------------
# Locks


def test_lock_serialises_and_is_reentrant(tmp_path):
    settings = load_settings(var_dir=tmp_path)
    order: list[str] = []

    def second() -> None:
        with lock(settings, "ingest", poll=0.05):
            order.append("second")

    with lock(settings, "ingest"):
        with lock(settings, "ingest"):  # re-entrant in the same process
            order.append("first")
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first done")
    thread.join(5)
    assert order == ["first", "first done", "second"]
    assert (tmp_path / "locks" / "ingest.lock").exists()


def test_lock_times_out(tmp_path):
    settings = load_settings(var_dir=tmp_path)
    failures, acquired = [], []

    def contender() -> None:
        try:
            with lock(settings, "period-2026Q3", timeout=0.2, poll=0.05):
                acquired.append("the contender got a lock that was held")
        except TimeoutError as exc:
            failures.append(str(exc))

    with period_lock(settings, "2026Q3"):
        thread = threading.Thread(target=contender)
        thread.start()
        thread.join(5)
    assert acquired == []
    assert failures and "still held" in failures[0]


def test_default_args_policy():
    from readiness.orchestration.alerts import task_failure_callback

    args = default_args()
    assert args["owner"] == "data-platform" and args["retries"] == 2
    assert args["retry_delay"].total_seconds() == 120
    assert args["on_failure_callback"] is task_failure_callback
