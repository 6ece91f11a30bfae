"""Period ids, Decree 09/2019 data windows, due dates and timeliness in Hanoi time."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from readiness.domain.periods import Period, PeriodError, ReportingCalendar, default_calendar, is_on_time, parse_period


@pytest.mark.parametrize("period_id, report_type, window", [
    ("2026Q1", "quarterly", (date(2025, 12, 15), date(2026, 3, 14))),
    ("2026Q3", "quarterly", (date(2026, 6, 15), date(2026, 9, 14))),
    ("2026S1", "six_monthly", (date(2025, 12, 15), date(2026, 6, 14))),
    ("2026S2", "six_monthly", (date(2026, 6, 15), date(2026, 12, 14))),
    ("2026", "yearly", (date(2025, 12, 15), date(2026, 12, 14))),
])
def test_data_windows_follow_decree_09(period_id, report_type, window):
    period = parse_period(period_id)
    assert period.report_type == report_type
    assert period.id == period_id
    assert period.window() == window


@pytest.mark.parametrize("bad", ["2026Q5", "2026S3", "2026Q0", "26Q1", "2026-Q1", "", "2026M1"])
def test_malformed_period_ids_are_rejected(bad):
    with pytest.raises(PeriodError):
        parse_period(bad)


def test_six_monthly_reports_are_due_before_15_june_and_15_december():
    assert parse_period("2026S1").due_date() == date(2026, 6, 14)
    assert parse_period("2026S2").due_date() == date(2026, 12, 14)


def test_on_time_is_judged_at_the_end_of_the_due_date_in_hanoi():
    period = parse_period("2026S1")  # due 14 June 2026
    assert is_on_time(datetime(2026, 6, 14, 16, 30, tzinfo=timezone.utc), period)  # 23:30 in Hanoi
    assert not is_on_time(datetime(2026, 6, 14, 17, 30, tzinfo=timezone.utc), period)  # 00:30 next day
    assert period.deadline_utc() == datetime(2026, 6, 14, 16, 59, 59, 999000, tzinfo=timezone.utc)


def test_due_dates_are_configuration():
    config = {"timezone": "Asia/Ho_Chi_Minh", "report_types": {
        "quarterly": {"window_start_day": 15, "window_end_day": 14, "due": {f"Q{q}": {"month": 3 * q + 1 if q < 4 else 1, "day": 5, "year_offset": 1 if q == 4 else 0} for q in range(1, 5)}},
        "six_monthly": {"window_start_day": 15, "window_end_day": 14, "due": {"S1": {"month": 6, "day": 14}, "S2": {"month": 12, "day": 14}}},
        "yearly": {"window_start_day": 15, "window_end_day": 14, "due": {"Y": {"month": 1, "day": 10, "year_offset": 1}}},
    }}
    calendar = ReportingCalendar(config)
    assert parse_period("2026Q4").due_date(calendar) == date(2027, 1, 5)
    assert parse_period("2026").due_date(calendar) == date(2027, 1, 10)


def test_previous_and_next_cross_years():
    assert parse_period("2026Q1").previous() == Period(2025, "quarterly", 4)
    assert parse_period("2025S2").next() == Period(2026, "six_monthly", 1)
    assert parse_period("2026").previous().id == "2025"


def test_closed_periods_are_those_past_their_deadline():
    as_of = datetime(2026, 9, 20, 17, 0, tzinfo=timezone.utc)  # just past 2026Q3's deadline in Hanoi
    assert [p.id for p in default_calendar().closed_periods("quarterly", as_of, 3)] == ["2026Q1", "2026Q2", "2026Q3"]
    before = datetime(2026, 9, 20, 16, 0, tzinfo=timezone.utc)
    assert [p.id for p in default_calendar().closed_periods("quarterly", before, 2)] == ["2026Q1", "2026Q2"]
