"""CSV report files: one row per indicator value, with a header naming the columns.

Separated by commas, tabs (Excel's "Unicode text") or semicolons, whichever the header line uses.
Rows of the same unit, report type, period and revision form one report and must agree on the
report's own fields (kind, name, time, source, id). Unknown or repeated columns are refused, as is
a row with more or fewer fields than the header.
"""
from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Iterator
from typing import Any

from readiness.contracts.report_checks import Located
from readiness.contracts.report_fields import ReportFileError, clip, event_id, finite, parse_time

CSV_COLUMNS = ("province_code", "unit_code", "unit_kind", "unit_name", "report_type", "period",
               "indicator_code", "numerator", "denominator", "value", "value_unit", "revision",
               "submitted_at", "source_system", "event_id")
REQUIRED_CSV = ("province_code", "unit_code", "unit_kind", "report_type", "period", "indicator_code",
                "submitted_at", "source_system")
# Columns of a report (not of a value): every row of one report must give them the same way.
REPORT_COLUMNS = ("unit_kind", "unit_name", "submitted_at", "source_system", "event_id")
DELIMITERS = (",", "\t", ";")
# A cell may be longer than the csv module's default 131,072 characters: the contract's bounds then
# name the field. A cell longer than this is refused by the csv module itself.
FIELD_LIMIT = 1 << 24
DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII only: str.isdigit() also takes "²"


@contextlib.contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _header(name: str, first: list[str]) -> list[str]:
    header = [c.strip() for c in first]
    unknown = [clip(c, 40) for c in header if c not in CSV_COLUMNS][:3]
    missing = [c for c in REQUIRED_CSV if c not in header]
    if missing or unknown:
        found = f" and unknown columns {unknown}" if missing and unknown else ""
        problem = f"missing columns {missing}{found}" if missing else f"unknown columns {unknown}"
        raise ReportFileError(f"{name}: {problem}; expected {list(CSV_COLUMNS)}")
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise ReportFileError(f"{name}: columns {repeated} appear more than once")
    return header


def _rows(name: str, text: str) -> list[tuple[str, dict[str, str]]]:
    """(where, row by column) of each non-blank data row; the header checked first."""
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=max(DELIMITERS, key=first_line.count))
    rows = []
    with _field_limit(FIELD_LIMIT):
        try:
            header = _header(name, next(reader, []))
            start = reader.line_num + 1
            for cells in reader:
                # The line the row starts on, as an editor counts (a quoted cell may span lines).
                where, start = f"{name} line {start}", reader.line_num + 1
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(header):
                    raise ReportFileError(f"{where}: {len(cells)} fields, but the header has {len(header)} columns")
                rows.append((where, {**dict.fromkeys(CSV_COLUMNS, ""), **dict(zip(header, cells))}))
        except csv.Error as exc:
            raise ReportFileError(f"{name} line {start}: not a CSV row: {exc}") from None
    return rows


def _number(text: str, column: str, where: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ReportFileError(f"{where}: field {column!r}: {clip(repr(text), 60)} is not a number") from None
    return finite(number, where, column, clip(repr(text), 60))


def _report(row: dict[str, str], key: tuple, where: str) -> dict[str, Any]:
    report = {
        "province_code": key[0],
        "reporting_unit": {"code": key[1], "kind": row["unit_kind"].strip().upper(),
                           "name": row["unit_name"].strip() or None},
        "report_type": key[2],
        "period": key[3],
        "values": [],
        "revision": key[4],
        "submitted_at": parse_time(row["submitted_at"].strip(), where),
        "source_system": row["source_system"].strip(),
    }
    return {"event_id": event_id(row["event_id"].strip(), report, where), **report}


def from_csv(name: str, text: str) -> list[Located]:
    reports: dict[tuple, tuple[str, dict[str, str], dict[str, Any], list[str]]] = {}
    for where, row in _rows(name, text):
        for column in REQUIRED_CSV:
            if not row[column].strip():
                raise ReportFileError(f"{where}: field {column!r} is empty")
        revision_text = row["revision"].strip() or "0"
        if not DIGITS.fullmatch(revision_text):
            raise ReportFileError(f"{where}: field 'revision': {clip(repr(revision_text), 60)} is not a whole number")
        key = (row["province_code"].strip(), row["unit_code"].strip(), row["report_type"].strip().upper(),
               row["period"].strip(), int(revision_text))
        if key not in reports:
            # A report's own fields come from its first row, so the schema check names that line.
            reports[key] = (where, row, _report(row, key, where), [])
        first_where, first_row, report, value_where = reports[key]
        for column in REPORT_COLUMNS:
            if row[column].strip() != first_row[column].strip():
                raise ReportFileError(f"{where}: field {column!r}: differs from {first_where}, a row of the same "
                                      "report (same unit, report type, period and revision)")
        report["values"].append({
            "indicator_code": row["indicator_code"].strip(),
            "numerator": _number(row["numerator"], "numerator", where),
            "denominator": _number(row["denominator"], "denominator", where),
            "value": _number(row["value"], "value", where),
            "unit": row["value_unit"].strip() or None,
        })
        value_where.append(where)
    return [Located(report, where, tuple(value_where)) for where, _, report, value_where in reports.values()]
