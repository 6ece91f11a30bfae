"""What `readiness publish` checks before sending: NaN and infinity refused, and a warning for each
value the national quality gate would quarantine (so a province can correct it first).

The expected warnings follow the gate's rules (``expectations/silver_report_values.json``) and the
reference data in ``readiness/data``: province 99 does not exist, ``38.X99`` is no unit of Thanh Hóa,
``agencies_on_data_network`` is a share (its numerator may not exceed its denominator, range 0-100).
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from readiness.contracts.report_checks import (
    Located,
    NonFiniteNumberError,
    non_finite_fields,
    refuse_non_finite,
    report_warnings,
)

GATE = "; the quality gate will quarantine this report"


def report(values: list[dict], **changes) -> dict:
    base = {"event_id": "4f0c321b-3c70-562c-ad14-0a7d6f8b2a65", "province_code": "38",
            "reporting_unit": {"code": "38.S02", "kind": "AGENCY", "name": None}, "report_type": "QUARTERLY",
            "period": "2026Q3", "values": values, "revision": 0,
            "submitted_at": datetime(2026, 9, 20, 16, 30, tzinfo=timezone.utc), "source_system": "t"}
    return {**base, **changes}


def value(code: str = "computers_per_100_staff", numerator=88.0, denominator=100.0, amount=None) -> dict:
    return {"indicator_code": code, "numerator": numerator, "denominator": denominator, "value": amount, "unit": None}


def warnings_of(*values: dict, **changes) -> list[str]:
    wheres = tuple(f"line {n}" for n in range(2, 2 + len(values)))
    return report_warnings([Located(report(list(values), **changes), "line 2", wheres)])


def test_a_good_report_has_no_warning():
    assert warnings_of(value(), value("it_staff", None, None, 4.0)) == []


@pytest.mark.parametrize("changes, expected", [
    ({"province_code": "99"}, "line 2: field 'province_code': 99 is not a province in force for period 2026Q3"),
    # A province code of before July 2025 (Hà Giang) is not one of the 34 in force in 2026.
    ({"province_code": "02"}, "line 2: field 'province_code': 02 is not a province in force for period 2026Q3"),
    ({"reporting_unit": {"code": "38.X99", "kind": "AGENCY", "name": None}},
     "line 2: field 'unit_code': '38.X99' is not a unit registered to province 38 for period 2026Q3 "
     "(readiness/data/reporting_units.csv)"),
    ({"submitted_at": datetime(2026, 6, 14, 16, 59, tzinfo=timezone.utc)},
     "line 2: field 'submitted_at': 2026-06-14T16:59:00+00:00 is before period 2026Q3 opens "
     "(2026-06-15T00:00:00+07:00)"),
], ids=["unknown-province", "former-province", "unregistered-unit", "before-the-period"])
def test_report_level_problems_are_warned(changes, expected):
    assert warnings_of(value(), **changes) == [expected + GATE]


def test_the_first_minute_of_the_period_is_not_warned():
    assert warnings_of(value(), submitted_at=datetime(2026, 6, 14, 17, 0, tzinfo=timezone.utc)) == []


@pytest.mark.parametrize("given, expected", [
    (value("computers_per_100_staf"), ["line 2: field 'indicator_code': 'computers_per_100_staf' is not in the "
                                       "indicator catalogue (readiness/data/indicators.csv)"]),
    (value("agencies_on_data_network", 12.0, 10.0),
     ["line 2: field 'numerator': 12 is above the denominator 10, which agencies_on_data_network does not allow",
      "line 2: the ratio 120 (numerator / denominator x 100) is outside agencies_on_data_network's range 0 to 100"]),
    # Computers per 100 staff may exceed 100 (more computers than staff), up to the catalogue's 300.
    (value("computers_per_100_staff", 120.0, 100.0), []),
    (value("computers_per_100_staff", 301.0, 100.0),
     ["line 2: the ratio 301 (numerator / denominator x 100) is outside computers_per_100_staff's range 0 to 300"]),
    (value("computers_per_100_staff", 5.0, -1.0),
     ["line 2: field 'denominator': -1 is negative"]),  # no ratio of a negative denominator
    (value("it_staff", None, None, 100_001.0),
     ["line 2: field 'value': 100001 is outside it_staff's range 0 to 100000"]),
], ids=["unknown-indicator", "numerator-above-denominator", "ratio-above-100-allowed", "ratio-out-of-range",
        "negative-denominator", "count-out-of-range"])
def test_value_problems_are_warned(given, expected):
    assert warnings_of(given) == [line + GATE for line in expected]


def test_an_indicator_reported_twice_in_one_report_is_warned_at_its_second_line():
    assert warnings_of(value(), value(numerator=87.0)) == [
        "line 3: field 'indicator_code': computers_per_100_staff is reported twice in this report (first at line 2)"
        + GATE]


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("field", ["numerator", "denominator", "value"])
def test_non_finite_numbers_are_refused_naming_the_field(number, field):
    record = report([value(), {**value("it_staff", None, None, 1.0), field: number}])
    assert [name for name, _ in non_finite_fields(record)] == [f"values[1].{field}"]
    with pytest.raises(NonFiniteNumberError) as raised:
        refuse_non_finite(record)
    assert raised.value.field == f"values[1].{field}"


def test_a_target_plans_non_finite_target_is_refused():
    plan = {"event_id": "x", "targets": [{"indicator_code": "it_staff", "target_value": math.inf}]}
    with pytest.raises(NonFiniteNumberError, match=r"'targets\[0\]\.target_value' is inf"):
        refuse_non_finite(plan)


def test_finite_records_pass():
    refuse_non_finite(report([value(), value("it_staff", None, None, 0.0)]))
