"""Checks on report records before they are sent: refusals every sender applies, and a preview of
what the national quality gate will quarantine.

Refused outright (the producer raises, ``readiness publish`` exits 2): a NaN or infinite number in
a value or target. Avro carries them, but one ``inf`` denominator once turned a province's ratio
into 0.0 in gold, so no sender may publish one.

Warned about (``readiness publish`` prints one line each, ``--strict`` refuses them): values the
gate's rules (``expectations/silver_report_values.json``) would quarantine, judged with the same
reference data the gate binds for the period: provinces in force and units registered at the end of
the period's data window, the indicator catalogue. The gate stays the authority; this is a courtesy
to the province, before anything leaves its machine.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from readiness.domain.periods import PeriodError, default_calendar, parse_period
from readiness.domain.reference import Indicator, indicator_by_code, provinces_in_force, units_open_on

# The number fields of each list item of a record, per list.
NUMBER_FIELDS: dict[str, tuple[str, ...]] = {"values": ("numerator", "denominator", "value"),
                                             "targets": ("target_value",)}


class NonFiniteNumberError(ValueError):
    """A record holds NaN or an infinity; ``field`` names it (``values[2].denominator``)."""

    def __init__(self, event_id: object, field: str, value: float) -> None:
        super().__init__(f"event {event_id}: field {field!r} is {value!r}; NaN and infinity are refused "
                         "(the quality gate cannot compare them)")
        self.field = field


def non_finite_fields(record: dict[str, Any]) -> Iterator[tuple[str, float]]:
    """(``values[i].field``, number) of every NaN or infinite number in a report or target plan."""
    for list_name, fields in NUMBER_FIELDS.items():
        items = record.get(list_name)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            for name in fields:
                number = item.get(name) if isinstance(item, dict) else None
                if isinstance(number, float) and not math.isfinite(number):
                    yield f"{list_name}[{i}].{name}", number


def refuse_non_finite(record: dict[str, Any]) -> None:
    """Raise :class:`NonFiniteNumberError` for the first NaN or infinity of ``record``."""
    for field, number in non_finite_fields(record):
        raise NonFiniteNumberError(record.get("event_id"), field, number)


# ------------------------------------------------------------------------------------------------
# The gate's preview


@dataclass(frozen=True)
class Located:
    """A report and where it came from: the report's own location, and each value's (a CSV line)."""

    report: dict[str, Any]
    where: str
    value_where: tuple[str, ...]


GATE = "the quality gate will quarantine this report"


@dataclass(frozen=True)
class _Reference:
    opens_at: datetime
    provinces: frozenset[str]
    units: frozenset[str]  # "province|unit"


@lru_cache(maxsize=64)
def _reference(period_id: str) -> _Reference | None:
    """The reference data the gate binds for a period; None if the period has no computable window."""
    try:
        period = parse_period(period_id)
        start, end = period.window()
    except (PeriodError, ValueError, OverflowError):  # year 0000, or a window past year 9999
        return None
    opens_at = datetime.combine(start, time(0), ZoneInfo(default_calendar().timezone))
    return _Reference(opens_at, frozenset(p.code for p in provinces_in_force(end)),
                      frozenset(f"{u.province_code}|{u.code}" for u in units_open_on(end)))


def report_warnings(located: Sequence[Located]) -> list[str]:
    """One line per value the gate would quarantine, in file order."""
    catalogue = indicator_by_code()
    lines: list[str] = []
    for item in located:
        lines += _report_level(item)
        seen: dict[str, str] = {}
        for value, where in zip(item.report["values"], item.value_where):
            code = value["indicator_code"]
            if code in seen:
                lines.append(f"{where}: field 'indicator_code': {code} is reported twice in this report "
                             f"(first at {seen[code]}); {GATE}")
                continue
            seen[code] = where
            indicator = catalogue.get(code)
            if indicator is None:
                lines.append(f"{where}: field 'indicator_code': {_show(code)} is not in the indicator catalogue "
                             f"(readiness/data/indicators.csv); {GATE}")
                continue
            lines += [f"{where}: {problem}; {GATE}" for problem in _value_problems(value, indicator)]
    return lines


def _report_level(item: Located) -> list[str]:
    report, where = item.report, item.where
    reference = _reference(report["period"])
    if reference is None:
        return []
    lines = []
    province, unit = report["province_code"], report["reporting_unit"]["code"]
    if province not in reference.provinces:
        lines.append(f"{where}: field 'province_code': {province} is not a province in force for period "
                     f"{report['period']}; {GATE}")
    elif f"{province}|{unit}" not in reference.units:
        lines.append(f"{where}: field 'unit_code': {_show(unit)} is not a unit registered to province {province} "
                     f"for period {report['period']} (readiness/data/reporting_units.csv); {GATE}")
    if report["submitted_at"] < reference.opens_at:
        lines.append(f"{where}: field 'submitted_at': {report['submitted_at'].isoformat()} is before period "
                     f"{report['period']} opens ({reference.opens_at.isoformat()}); {GATE}")
    return lines


def _value_problems(value: dict[str, Any], indicator: Indicator) -> list[str]:
    numerator, denominator = value["numerator"], value["denominator"]
    problems = [f"field {name!r}: {number:g} is negative" for name, number in
                (("numerator", numerator), ("denominator", denominator)) if number is not None and number < 0]
    if indicator.numerator_at_most_denominator and None not in (numerator, denominator) and numerator > denominator:
        problems.append(f"field 'numerator': {numerator:g} is above the denominator {denominator:g}, which "
                        f"{indicator.code} does not allow")
    reported, label = _reported(value, indicator)
    if reported is not None and not indicator.min_value <= reported <= indicator.max_value:
        problems.append(f"{label} is outside {indicator.code}'s range {indicator.min_value:g} to "
                        f"{indicator.max_value:g}")
    return problems


def _reported(value: dict[str, Any], indicator: Indicator) -> tuple[float | None, str]:
    """The value the gate compares with the catalogue's range (as ``conform.add_rule_columns`` computes
    it: a ratio times the scale when the denominator is positive, else the amount), and its label."""
    if not indicator.is_ratio:
        amount = value["value"]
        return amount, f"field 'value': {amount:g}" if amount is not None else ""
    numerator, denominator = value["numerator"], value["denominator"]
    if numerator is None or denominator is None or denominator <= 0:
        return None, ""
    ratio = numerator / denominator * indicator.scale
    return ratio, f"the ratio {ratio:g} (numerator / denominator x {indicator.scale:g})"


def _show(text: str, limit: int = 40) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."
