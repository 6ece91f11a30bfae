"""Which periods a run works on: the periods closing on a day, the periods bronze commits touched.

Pure decisions (no Spark, no Airflow), so the DAG processor can import them and tests can call them:

- :func:`periods_to_close` / :func:`periods_closing_on`: which periods close on a given day
  (the day after their due date in the reporting calendar's time zone).
- :func:`changed_periods`: which periods received bronze rows between two Delta versions, read
  from the table's transaction log (:mod:`readiness.lake.log`), without scanning data.
- :func:`periods_from_events`: the periods named by the bronze asset events that triggered a run.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from readiness.domain.periods import (
    PERIODS_PER_YEAR,
    REPORT_TYPES,
    Period,
    ReportingCalendar,
    default_calendar,
    parse_period,
)
from readiness.lake.log import commit_actions, partitions_added, table_dir
from readiness.lake.tables import BRONZE_REPORTS
from readiness.settings import Settings


def close_day(moment: datetime, tz: str | None = None) -> date:
    """The local calendar day (default: the reporting calendar's time zone) of an aware instant."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(ZoneInfo(tz or default_calendar().timezone)).date()


def periods_closing_on(day: date, calendar: ReportingCalendar | None = None) -> list[Period]:
    """Periods that close on ``day``: their due date is the day before.

    A report is on time until the end of its due date in Asia/Ho_Chi_Minh, so a period is closed
    from 00:00 local time the next day. Several report types can close on the same day (on the
    reference calendar the fourth quarter and the year are both due on 20 December).
    """
    cal = calendar or default_calendar()
    due = day - timedelta(days=1)
    found = []
    for year in (due.year - 1, due.year, due.year + 1):  # year_offset in the calendar may shift a due date
        for report_type in REPORT_TYPES:
            for index in range(1, PERIODS_PER_YEAR[report_type] + 1):
                period = Period(year, report_type, index)
                if cal.due_date(period) == due:
                    found.append(period)
    return sorted(found, key=lambda p: (REPORT_TYPES.index(p.report_type), p.year, p.index))


def periods_to_close(run_after: datetime, requested: str | None = None,
                     calendar: ReportingCalendar | None = None) -> list[str]:
    """The period-close decision of one run of ``readiness_period_close``.

    ``requested`` (the DAG's ``period_id`` param) closes that period whatever the day; otherwise
    the periods whose due date was the day before ``run_after``'s local day. Empty: nothing to do.
    """
    if requested:
        return [parse_period(requested).id]
    cal = calendar or default_calendar()
    return [p.id for p in periods_closing_on(close_day(run_after, cal.timezone), cal)]


def next_close_days(start: date, count: int, calendar: ReportingCalendar | None = None) -> list[tuple[date, list[str]]]:
    """The next ``count`` days on or after ``start`` on which some period closes (for docs and checks)."""
    result: list[tuple[date, list[str]]] = []
    day = start
    while len(result) < count and day < start + timedelta(days=3 * 366):
        closing = periods_closing_on(day, calendar)
        if closing:
            result.append((day, [p.id for p in closing]))
        day += timedelta(days=1)
    return result


def sort_periods(period_ids: Iterable[str]) -> list[str]:
    """Period ids in data-window order (then quarterly, six-monthly, yearly); invalid ids dropped."""
    parsed = []
    for period_id in set(period_ids):
        try:
            parsed.append(parse_period(period_id))
        except ValueError:
            continue
    return [p.id for p in sorted(parsed, key=lambda p: (p.window()[1], REPORT_TYPES.index(p.report_type)))]


def changed_periods(settings: Settings, after_version: int | None, upto_version: int | None = None) -> list[str]:
    """Periods that received bronze report rows in the commits ``after_version < v <= upto_version``."""
    return sort_periods(partitions_added(commit_actions(table_dir(settings, BRONZE_REPORTS), after_version,
                                                        upto_version)))


def periods_from_events(extras: Iterable[Mapping[str, Any] | None], requested: Iterable[str] = ()) -> list[str]:
    """Union of the ``periods`` listed in bronze asset events' extras and of ``requested``."""
    found: set[str] = set(requested or ())
    for extra in extras:
        found.update((extra or {}).get("periods") or [])
    return sort_periods(found)
