"""The province's quarantine listing: reports to correct apart from reports held back."""
from __future__ import annotations

from readiness.analyst.views import format_quarantine


def row(event: str, status: str, rule: str = "expect_column_values_to_not_be_null:value") -> dict:
    return {"province_code": "38", "period_id": "2026Q3", "unit_code": "38.S01", "revision": 0,
            "indicator_code": None, "rule": rule, "observed_value": "null", "expected": None,
            "severity": "high", "status": status, "event_id": event}


def test_held_reports_are_counted_apart_from_those_to_correct():
    text = format_quarantine([row("e1", "open"), row("e1", "open"), row("e2", "held", "held_back"),
                              row("e3", "superseded")])
    assert text.splitlines()[0] == ("Province 38: 1 report(s) to correct, 1 accepted report(s) held back until "
                                    "the share of quarantined ones falls")


def test_without_held_reports_the_header_is_the_count_to_correct():
    assert format_quarantine([row("e1", "open"), row("e2", "open")]).splitlines()[0] == \
        "Province 38: 2 report(s) to correct"
