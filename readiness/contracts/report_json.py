"""JSON report files: one report object or a list of them (``.json``), or one per line (``.jsonl``).

Objects are shaped like the Avro record; ``submitted_at`` is ISO 8601 text with a zone. Unknown
fields are refused (a misspelt ``numerater`` would otherwise be dropped without a word), whole
numbers become doubles, and NaN, ``Infinity`` and numbers past a double (``1e400``) are refused.
"""
from __future__ import annotations

import json
from typing import Any

from readiness.contracts.report_checks import Located
from readiness.contracts.report_fields import ReportFileError, clip, event_id, finite, parse_time

REPORT_KEYS = frozenset(("event_id", "province_code", "reporting_unit", "report_type", "period", "values",
                         "revision", "submitted_at", "source_system"))
UNIT_KEYS = frozenset(("code", "kind", "name"))
VALUE_KEYS = frozenset(("indicator_code", "numerator", "denominator", "value", "unit"))
NUMBER_KEYS = ("numerator", "denominator", "value")


def from_json(name: str, text: str) -> list[Located]:
    data = _json(name, text)
    if not isinstance(data, (dict, list)):
        raise ReportFileError(f"{name}: expected a report object or a list of them, found {type(data).__name__}")
    items = data if isinstance(data, list) else [data]
    return [_report(item, f"{name} report {n}") for n, item in enumerate(items, start=1)]


def from_json_lines(name: str, text: str) -> list[Located]:
    return [_report(_json(f"{name} line {n}", line), f"{name} line {n}")
            for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _json(where: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (one report per line? name the file .jsonl)" if exc.msg == "Extra data" else ""
        raise ReportFileError(f"{where}: not valid JSON: {exc}{hint}") from None
    except RecursionError:
        raise ReportFileError(f"{where}: not a report: JSON nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise ReportFileError(f"{where}: not a report: {clip(str(exc).split(';')[0], 80)}") from None


def _unknown(obj: dict, known: frozenset[str], where: str, what: str) -> None:
    extra = sorted(str(k) for k in obj if k not in known)
    if extra:
        raise ReportFileError(f"{where}: unknown field {clip(repr(extra[0]), 60)} in the {what}; expected "
                              f"{sorted(known)}")


def _number(number: object, where: str, field: str) -> object:
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return number  # the schema check names it
    try:
        number = float(number)
    except OverflowError:
        raise ReportFileError(f"{where}: field {field!r}: the number is too large for a double") from None
    return finite(number, where, field, repr(number))


def _values(values: object, where: str) -> tuple[object, tuple[str, ...]]:
    """The values with the schema's defaults, and where each is (``r.json report 2 value 3``)."""
    if not isinstance(values, list):
        return values, ()
    result, wheres = [], []
    for i, value in enumerate(values, start=1):
        value_where = f"{where} value {i}"
        if isinstance(value, dict):
            _unknown(value, VALUE_KEYS, value_where, "value")
            value = {"numerator": None, "denominator": None, "value": None, "unit": None, **value}
            for key in NUMBER_KEYS:
                value[key] = _number(value[key], value_where, key)
        result.append(value)
        wheres.append(value_where)
    return result, tuple(wheres)


def _label(report: dict[str, Any]) -> str:
    """`` (25.S03 2026S1)`` when the unit code and period are short printable text, else nothing."""
    unit = report.get("reporting_unit")
    parts = (unit.get("code") if isinstance(unit, dict) else None, report.get("period"))
    if all(isinstance(p, str) and 0 < len(p) <= 24 and p.isprintable() for p in parts):
        return f" ({parts[0]} {parts[1]})"
    return ""


def _report(item: object, where: str) -> Located:
    if not isinstance(item, dict):
        raise ReportFileError(f"{where}: expected an object, found {type(item).__name__}")
    where = where + _label(item)
    _unknown(item, REPORT_KEYS, where, "report")
    report = {"revision": 0, **item}
    if "reporting_unit" not in report:
        raise ReportFileError(f"{where}: missing field 'reporting_unit'")
    unit = report["reporting_unit"]
    if not isinstance(unit, dict):
        raise ReportFileError(f"{where}: field 'reporting_unit': expected an object with code and kind, found "
                              f"{type(unit).__name__}")
    _unknown(unit, UNIT_KEYS, where, "reporting_unit")
    report["reporting_unit"] = {"name": None, **unit}
    if "submitted_at" in report:
        if not isinstance(report["submitted_at"], str):
            raise ReportFileError(f"{where}: field 'submitted_at': expected an ISO 8601 time as text, found "
                                  f"{type(report['submitted_at']).__name__}")
        report["submitted_at"] = parse_time(report["submitted_at"], where)
    report["values"], value_where = _values(report.get("values", []), where)
    try:
        report["event_id"] = event_id(report.get("event_id"), report, where)
    except KeyError as exc:
        raise ReportFileError(f"{where}: missing field {exc.args[0]!r}") from None
    return Located(report, where, value_where)
