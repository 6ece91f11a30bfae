"""Reporting periods: ids, report types, data windows and due dates.

Period ids: ``2026Q3`` (quarterly), ``2026S1`` (six-monthly), ``2026`` (yearly). The data window of
a period runs from the 15th of the month before its first month to the 14th of its last month
(Decree 09/2019); the due date comes from ``data/reporting_calendar.json``, never from a formula on
the period's end, because provinces set it per report.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from readiness.settings import PACKAGE_DATA

CALENDAR_FILE = PACKAGE_DATA / "reporting_calendar.json"
PERIOD_PATTERN = re.compile(r"^(?P<year>[0-9]{4})(?:(?P<kind>[QS])(?P<index>[0-9]))?$")
# The same ids as a JSON-schema pattern (Airflow params, API schemas): quarters 1-4, halves 1-2.
PERIOD_ID_PATTERN = r"^[0-9]{4}(Q[1-4]|S[12])?$"
PERIOD_ID_HELP = "YYYY, YYYYQ1..YYYYQ4 or YYYYS1..YYYYS2, e.g. 2026Q3"
# Report types in their display and processing order.
REPORT_TYPES = ("quarterly", "six_monthly", "yearly")
PERIODS_PER_YEAR = {"quarterly": 4, "six_monthly": 2, "yearly": 1}


class PeriodError(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Period:
    year: int
    report_type: str
    index: int  # quarter 1-4, half 1-2, or 1 for a year

    @property
    def id(self) -> str:
        if self.report_type == "quarterly":
            return f"{self.year}Q{self.index}"
        if self.report_type == "six_monthly":
            return f"{self.year}S{self.index}"
        return f"{self.year}"

    @property
    def months(self) -> int:
        return {"quarterly": 3, "six_monthly": 6, "yearly": 12}[self.report_type]

    @property
    def first_month(self) -> int:
        return (self.index - 1) * self.months + 1

    @property
    def last_month(self) -> int:
        return self.first_month + self.months - 1

    @property
    def calendar_start(self) -> date:
        return date(self.year, self.first_month, 1)

    @property
    def calendar_end(self) -> date:
        nxt = date(self.year + (self.last_month == 12), self.last_month % 12 + 1, 1)
        return nxt - timedelta(days=1)

    def window(self, calendar: "ReportingCalendar | None" = None) -> tuple[date, date]:
        """Inclusive data window (Decree 09/2019: 15th of the month before to the 14th of the last month)."""
        rules = (calendar or default_calendar()).rules(self.report_type)
        start_month_year = (self.year - 1, 12) if self.first_month == 1 else (self.year, self.first_month - 1)
        start = date(start_month_year[0], start_month_year[1], rules["window_start_day"])
        end = date(self.year, self.last_month, rules["window_end_day"])
        return start, end

    def due_date(self, calendar: "ReportingCalendar | None" = None) -> date:
        return (calendar or default_calendar()).due_date(self)

    def deadline_utc(self, calendar: "ReportingCalendar | None" = None) -> datetime:
        """The last instant (UTC) at which a submission is still on time: end of the due date, Hanoi time."""
        cal = calendar or default_calendar()
        local_end = datetime.combine(self.due_date(cal) + timedelta(days=1), time(0), ZoneInfo(cal.timezone))
        return (local_end - timedelta(milliseconds=1)).astimezone(timezone.utc)

    def previous(self) -> "Period":
        per_year = 12 // self.months
        if self.index > 1:
            return Period(self.year, self.report_type, self.index - 1)
        return Period(self.year - 1, self.report_type, per_year)

    def next(self) -> "Period":
        per_year = 12 // self.months
        if self.index < per_year:
            return Period(self.year, self.report_type, self.index + 1)
        return Period(self.year + 1, self.report_type, 1)

    def __str__(self) -> str:
        return self.id


def parse_period(period_id: str) -> Period:
    match = PERIOD_PATTERN.match(period_id or "")
    if not match:
        raise PeriodError(f"period id {period_id!r} is not of the form 2026Q3, 2026S1 or 2026")
    year, kind, index = int(match["year"]), match["kind"], match["index"]
    if kind is None:
        return Period(year, "yearly", 1)
    index_value = int(index)
    limit = 4 if kind == "Q" else 2
    if not 1 <= index_value <= limit:
        raise PeriodError(f"period id {period_id!r}: {kind}{index} is out of range 1-{limit}")
    return Period(year, "quarterly" if kind == "Q" else "six_monthly", index_value)


def is_on_time(submitted_at: datetime, period: Period, calendar: "ReportingCalendar | None" = None) -> bool:
    if submitted_at.tzinfo is None:
        raise ValueError("submitted_at must be timezone-aware (UTC)")
    return submitted_at <= period.deadline_utc(calendar)


class ReportingCalendar:
    """Due dates and window rules per report type, loaded from configuration."""

    def __init__(self, config: dict) -> None:
        self.timezone: str = config["timezone"]
        self._types: dict[str, dict] = config["report_types"]
        missing = set(REPORT_TYPES) - set(self._types)
        if missing:
            raise ValueError(f"reporting calendar lacks report types {sorted(missing)}")

    @classmethod
    def from_file(cls, path: Path = CALENDAR_FILE) -> "ReportingCalendar":
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def rules(self, report_type: str) -> dict:
        return self._types[report_type]

    def due_date(self, period: Period) -> date:
        key = {"quarterly": f"Q{period.index}", "six_monthly": f"S{period.index}", "yearly": "Y"}[period.report_type]
        due = self._types[period.report_type]["due"][key]
        year = period.year + int(due.get("year_offset", 0))
        return date(year, int(due["month"]), int(due["day"]))

    def closed_periods(self, report_type: str, as_of: datetime, count: int) -> list[Period]:
        """The ``count`` most recent periods of a type whose deadline has passed at ``as_of``, oldest first."""
        probe = {"quarterly": Period(as_of.year, "quarterly", 4), "six_monthly": Period(as_of.year, "six_monthly", 2),
                 "yearly": Period(as_of.year, "yearly", 1)}[report_type]
        while probe.deadline_utc(self) > as_of:
            probe = probe.previous()
        result = [probe]
        while len(result) < count:
            result.append(result[-1].previous())
        return list(reversed(result))


@lru_cache(maxsize=1)
def default_calendar() -> ReportingCalendar:
    return ReportingCalendar.from_file()


# The legal time zone of the reporting calendar (due dates, data windows): the one source of it.
REPORTING_TIMEZONE: str = default_calendar().timezone
