"""Reading a province's report from a CSV or JSON file into report-submission records.

JSON: one report object, or a list of them, shaped like the Avro record (``submitted_at`` as an ISO
8601 time with a zone). CSV: one row per indicator value with the columns in ``CSV_COLUMNS``; rows of
the same unit, report type, period and revision form one report. A report without an ``event_id``
gets a name-based UUID derived from its identity, so sending the same file twice sends the same ids
and the platform deduplicates them.

Every problem is raised as :class:`ReportFileError` naming the row (or report) and the field: a
CSV report by the line of its first row, a JSON report by its position in the file.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from readiness.contracts.encoding import (
    REPORT_SUBMISSION,
    REPORT_TYPE_TO_AVRO,
    InvalidEventError,
    check_record,
    default_registry,
)
from readiness.domain.periods import PeriodError, parse_period

CSV_COLUMNS = ("province_code", "unit_code", "unit_kind", "unit_name", "report_type", "period",
               "indicator_code", "numerator", "denominator", "value", "value_unit", "revision",
               "submitted_at", "source_system", "event_id")
REQUIRED_CSV = ("province_code", "unit_code", "unit_kind", "report_type", "period", "indicator_code",
                "submitted_at", "source_system")
EVENT_NAMESPACE = uuid.UUID("6f1c2a3e-5b7d-4c1e-9a0f-2d4b8e6c0a11")


class ReportFileError(ValueError):
    pass


def read_reports(path: Path) -> list[dict[str, Any]]:
    """Parse and validate every report in ``path``; raise on the first bad field."""
    if not path.exists():
        raise ReportFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise ReportFileError(f"{path}: expected a .csv or .json file")
    text = _read_text(path)
    located = _from_json(path.name, text) if suffix == ".json" else _from_csv(path.name, text)
    if not located:
        raise ReportFileError(f"{path}: no reports in the file")
    schema = default_registry().current(REPORT_SUBMISSION)
    for where, report in located:
        try:
            check_record(report, schema)
        except InvalidEventError as exc:
            raise ReportFileError(f"{where}: {exc}") from None
        _check_semantics(report, where)
    return [report for _, report in located]


def _read_text(path: Path) -> str:
    """The file as text: UTF-8 (a byte-order mark is dropped); an undecodable byte is named by its line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReportFileError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ReportFileError(f"{path.name} line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                              "save the file as UTF-8") from None
    if not text.strip():
        raise ReportFileError(f"{path.name}: the file is empty")
    return text


def _check_semantics(report: dict[str, Any], where: str) -> None:
    try:
        period = parse_period(report["period"])
    except PeriodError as exc:
        raise ReportFileError(f"{where}: field 'period': {exc}") from None
    if REPORT_TYPE_TO_AVRO[period.report_type] != report["report_type"]:
        raise ReportFileError(f"{where}: field 'report_type': {report['report_type']} does not match period {period.id}")
    if len(report["province_code"]) != 2 or not report["province_code"].isdigit():
        raise ReportFileError(f"{where}: field 'province_code': {report['province_code']!r} is not a 2-digit code")
    try:
        uuid.UUID(report["event_id"])
    except ValueError:
        raise ReportFileError(f"{where}: field 'event_id': {report['event_id']!r} is not a UUID") from None


def _parse_time(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        raise ReportFileError(f"{where}: field 'submitted_at': {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ReportFileError(f"{where}: field 'submitted_at': {text!r} has no time zone (use Z or +07:00)")
    return moment.astimezone(timezone.utc)


def _event_id(report: dict[str, Any]) -> str:
    # str(): a field of the wrong type still gets an id here and is then named by the schema check.
    identity = "|".join(str(part) for part in (report["province_code"], report["reporting_unit"]["code"],
                                               report["report_type"], report["period"], report["revision"]))
    return str(uuid.uuid5(EVENT_NAMESPACE, identity))


def _from_json(name: str, text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportFileError(f"{name}: not valid JSON: {exc}") from None
    if not isinstance(data, (dict, list)):
        raise ReportFileError(f"{name}: expected a report object or a list of them, found {type(data).__name__}")
    items = data if isinstance(data, list) else [data]
    reports = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ReportFileError(f"{name} report {n}: expected an object, found {type(item).__name__}")
        report = dict(item)
        report.setdefault("revision", 0)
        if "submitted_at" in report and isinstance(report["submitted_at"], str):
            report["submitted_at"] = _parse_time(report["submitted_at"], f"{name} report {n}")
        if isinstance(report.get("reporting_unit"), dict):
            report["reporting_unit"] = {"name": None, **report["reporting_unit"]}
        values = report.get("values", [])
        if isinstance(values, list):  # anything else is named by the schema check
            report["values"] = [{"numerator": None, "denominator": None, "value": None, "unit": None, **v}
                                if isinstance(v, dict) else v for v in values]
        if not report.get("event_id"):
            unit = report.get("reporting_unit")
            if "reporting_unit" in report and not isinstance(unit, dict):
                raise ReportFileError(f"{name} report {n}: field 'reporting_unit': expected an object with code "
                                      f"and kind, found {type(unit).__name__}")
            try:
                report["event_id"] = _event_id(report)
            except KeyError as exc:
                raise ReportFileError(f"{name} report {n}: missing field {exc.args[0]!r}") from None
        unit = report.get("reporting_unit")
        code = unit.get("code", "?") if isinstance(unit, dict) else "?"
        reports.append((f"{name} report {n} ({code} {report.get('period', '?')})", report))
    return reports


def _number(row: dict[str, str], column: str, where: str) -> float | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ReportFileError(f"{where}: field {column!r}: {text!r} is not a number") from None


def _from_csv(name: str, text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in REQUIRED_CSV if c not in (reader.fieldnames or [])]
    if missing:
        raise ReportFileError(f"{name}: missing columns {missing}; expected {list(CSV_COLUMNS)}")
    reports: dict[tuple, tuple[str, dict[str, Any]]] = {}
    for row in reader:
        # The reader's own line count: blank lines it skips still count, as in an editor.
        where = f"{name} line {reader.line_num}"
        for column in REQUIRED_CSV:
            if not (row.get(column) or "").strip():
                raise ReportFileError(f"{where}: field {column!r} is empty")
        revision_text = (row.get("revision") or "0").strip()
        if not revision_text.isdigit():
            raise ReportFileError(f"{where}: field 'revision': {revision_text!r} is not a whole number")
        report_type = row["report_type"].strip().upper()
        key = (row["province_code"].strip(), row["unit_code"].strip(), report_type, row["period"].strip(),
               int(revision_text))
        if key not in reports:
            report = {
                "event_id": (row.get("event_id") or "").strip(),
                "province_code": key[0],
                "reporting_unit": {"code": key[1], "kind": row["unit_kind"].strip().upper(),
                                   "name": (row.get("unit_name") or "").strip() or None},
                "report_type": report_type,
                "period": key[3],
                "values": [],
                "revision": key[4],
                "submitted_at": _parse_time(row["submitted_at"].strip(), where),
                "source_system": row["source_system"].strip(),
            }
            report["event_id"] = report["event_id"] or _event_id(report)
            # A report's own fields come from its first row, so the schema check names that line.
            reports[key] = (where, report)
        reports[key][1]["values"].append({
            "indicator_code": row["indicator_code"].strip(),
            "numerator": _number(row, "numerator", where),
            "denominator": _number(row, "denominator", where),
            "value": _number(row, "value", where),
            "unit": (row.get("value_unit") or "").strip() or None,
        })
    return list(reports.values())
