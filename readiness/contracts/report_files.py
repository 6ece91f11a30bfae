"""Reading a province's report file into report-submission records.

Formats (by suffix): CSV (``.csv``, ``.tsv``; :mod:`readiness.contracts.report_csv`): one row per
indicator value with the columns in ``CSV_COLUMNS``; rows of the same unit, report type, period and
revision form one report. JSON (``.json``, ``.jsonl``; :mod:`readiness.contracts.report_json`): one
report object or a list of them, or one object per line, shaped like the Avro record. Text is UTF-8,
or UTF-16/32 with a byte-order mark (:mod:`readiness.contracts.file_text`).

A report without an ``event_id`` gets a name-based UUID derived from its identity, so sending the
same file twice sends the same ids and the platform drops the copies it already has; a given id is
kept, in its canonical lower-case form.

Every problem is one :class:`ReportFileError` line naming the file, where in it (a CSV report by
the line of its row, a JSON report by its position or its JSON-lines line) and the field. Every
string field is bounded by :data:`readiness.contracts.limits.STRING_LIMITS` and may hold no control
character, and a report holds at most ``MAX_ITEMS["values"]`` values: nothing the ingest would
dead-letter for its shape is sent.
"""
from __future__ import annotations

import re
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from readiness.contracts.encoding import (
    REPORT_SUBMISSION,
    REPORT_TYPE_TO_AVRO,
    InvalidEventError,
    check_record,
    default_registry,
)
from readiness.contracts.file_text import TextFileError, file_text
from readiness.contracts.limits import MAX_ITEMS, STRING_LIMITS
from readiness.contracts.report_checks import Located
from readiness.contracts.report_csv import CSV_COLUMNS, REQUIRED_CSV, from_csv
from readiness.contracts.report_fields import YEARS, ReportFileError, clip
from readiness.contracts.report_json import from_json, from_json_lines
from readiness.domain.periods import PeriodError, parse_period

__all__ = ["CSV_COLUMNS", "REQUIRED_CSV", "Located", "ReportFileError", "read_located", "read_reports",
           "select_events"]

PARSERS: dict[str, Callable[[str, str], list[Located]]] = {
    ".csv": from_csv, ".tsv": from_csv, ".json": from_json, ".jsonl": from_json_lines}
# How each contract field is called in a CSV file (the JSON names are the contract's, values' fields bare).
CSV_NAMES = {"reporting_unit.code": "unit_code", "reporting_unit.name": "unit_name",
             "values.indicator_code": "indicator_code", "values.unit": "value_unit"}
JSON_NAMES = {"values.indicator_code": "indicator_code", "values.unit": "unit"}
PROVINCE_CODE = re.compile(r"[0-9]{2}")
# Control characters (C0, DEL, C1) and lone surrogates (JSON "\ud800"), which no UTF-8 writer accepts.
FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def read_reports(path: Path) -> list[dict[str, Any]]:
    """Parse and validate every report in ``path``; raise on the first bad field."""
    return [item.report for item in read_located(path)]


def read_located(path: Path) -> list[Located]:
    """The reports of ``path``, validated, with where each report and each value is in the file."""
    parse = _parser(path)
    try:
        text = file_text(path.name, _read_bytes(path))
    except TextFileError as exc:
        raise ReportFileError(str(exc)) from None
    if not text.strip():
        raise ReportFileError(f"{path.name}: the file is empty")
    located = parse(path.name, text)
    if not located:
        raise ReportFileError(f"{path}: no reports in the file")
    schema = default_registry().current(REPORT_SUBMISSION)
    names = CSV_NAMES if parse is from_csv else JSON_NAMES
    first_of: dict[str, str] = {}
    for item in located:
        _check_shape(item, names)
        try:
            check_record(item.report, schema)
        except InvalidEventError as exc:
            raise ReportFileError(f"{item.where}: {clip(str(exc))}") from None
        _check_semantics(item.report, item.where)
        event_id = item.report["event_id"]
        if event_id in first_of:
            raise ReportFileError(f"{item.where}: field 'event_id': {event_id} is also the id of {first_of[event_id]} "
                                  "(one id per report; a correction needs a higher revision)")
        first_of[event_id] = item.where
    return located


def select_events(located: list[Located], ids_file: Path, report_file: str) -> list[Located]:
    """The reports whose event ids ``ids_file`` lists (one per line, as ``readiness publish
    --failed-out`` writes them; blank lines and ``#`` comments skipped), in file order.

    An id that is not in the report file is an error: the list belongs to another file.
    """
    try:
        text = file_text(ids_file.name, _read_bytes(ids_file))
    except TextFileError as exc:
        raise ReportFileError(str(exc)) from None
    by_id = {item.report["event_id"]: item for item in located}
    wanted: set[str] = set()
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            event_id = str(uuid.UUID(line))
        except ValueError:
            raise ReportFileError(f"{ids_file.name} line {n}: {clip(repr(line), 60)} is not an event id") from None
        if event_id not in by_id:
            raise ReportFileError(f"{ids_file.name} line {n}: event id {event_id} is not in {report_file}")
        wanted.add(event_id)
    return [item for item in located if item.report["event_id"] in wanted]


def _parser(path: Path) -> Callable[[str, str], list[Located]]:
    if not path.exists() and not path.is_symlink():
        raise ReportFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in PARSERS:
        raise ReportFileError(f"{path}: expected a .csv or .json file (or .tsv, .jsonl)")
    return PARSERS[suffix]


def _read_bytes(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise ReportFileError(f"{path}: is a directory, not a report file")
        if not stat.S_ISREG(mode):  # a FIFO or a device would block or never end
            raise ReportFileError(f"{path}: is not a regular file")
        return path.read_bytes()
    except OSError as exc:
        raise ReportFileError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def _strings(report: dict[str, Any]) -> Iterator[tuple[str, int | None, object]]:
    """(contract field, value index or None, value) of every string field of a report."""
    for name in ("event_id", "province_code", "period", "source_system"):
        yield name, None, report.get(name)
    unit = report.get("reporting_unit")
    if isinstance(unit, dict):
        for name in ("code", "name"):
            yield f"reporting_unit.{name}", None, unit.get(name)
    values = report.get("values")
    for i, value in enumerate(values if isinstance(values, list) else []):
        if isinstance(value, dict):
            for name in ("indicator_code", "unit"):
                yield f"values.{name}", i, value.get(name)


def _check_shape(item: Located, names: dict[str, str]) -> None:
    """The contract's bounds: how many values, how long each string, no control characters."""
    values = item.report.get("values")
    if isinstance(values, list) and len(values) > MAX_ITEMS["values"]:
        raise ReportFileError(f"{item.where}: field 'values': {len(values)} values in one report, "
                              f"at most {MAX_ITEMS['values']}")
    for field, index, text in _strings(item.report):
        if not isinstance(text, str):
            continue  # missing or of the wrong type: the schema check names it
        where = item.where if index is None else item.value_where[index]
        name = names.get(field, field)
        if len(text) > STRING_LIMITS[field]:
            raise ReportFileError(f"{where}: field {name!r}: {len(text):,} characters, at most {STRING_LIMITS[field]}")
        bad = FORBIDDEN.search(text)
        if bad:
            raise ReportFileError(f"{where}: field {name!r}: contains the control character {bad[0]!r} "
                                  f"at position {bad.start() + 1}")


def _check_semantics(report: dict[str, Any], where: str) -> None:
    try:
        period = parse_period(report["period"])
    except PeriodError as exc:
        raise ReportFileError(f"{where}: field 'period': {exc}") from None
    if period.year not in YEARS:
        raise ReportFileError(f"{where}: field 'period': year {period.year} is outside {YEARS[0]}-{YEARS[-1]}")
    if REPORT_TYPE_TO_AVRO[period.report_type] != report["report_type"]:
        raise ReportFileError(f"{where}: field 'report_type': {report['report_type']} does not match period {period.id}")
    if not PROVINCE_CODE.fullmatch(report["province_code"]):
        raise ReportFileError(f"{where}: field 'province_code': {clip(repr(report['province_code']))} is not a "
                              "2-digit code")
