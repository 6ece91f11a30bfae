"""Hostile and malformed report files for `readiness publish`, each with the outcome a province should see.

Every case says what the command must do with its file, worked out from how the file was built:

- ``refused``: exit 2, nothing sent, and stderr is one ``error:`` line that names the file, where in
  it (``line 3``, ``report 2``) and the field (``'unit_name'``), plus any text the case expects
  (``cp1258``, ``UTF-16``);
- ``warned``: the file is sent (exit 0) after one ``warning:`` line per value the quality gate would
  quarantine, each naming its place and field; with ``--strict`` it is refused (exit 2) instead;
- ``sent``: read correctly (UTF-16 from Excel, for instance) and sent without a word on stderr.

The files are built from the good report of ``support.report_files`` with one thing changed, so a
case fails for its own reason only. ``CASES`` holds them all, ``case(name)`` one of them.
"""
from __future__ import annotations

import codecs
import json
import os
import random
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.report_files import CSV_HEADER, GOOD_CSV_ROWS, json_report

LONG = 131_072  # the csv module's own field limit, and far past every bound of the contract
TONES = "\u0300\u0301\u0303\u0309\u0323"  # the five Vietnamese tone marks


@dataclass(frozen=True)
class HostileFile:
    name: str
    filename: str
    content: bytes | None  # None: see ``kind``
    outcome: str  # refused | warned | sent
    where: str = ""  # "line 3", "report 1", "value 2": must be in the error line
    field: str = ""  # the field the error line must name, quoted
    mentions: tuple[str, ...] = ()  # more text the error line must hold
    warnings: tuple[str, ...] = ()  # warned: one expected text per warning line, in order
    kind: str = "file"  # file | directory | missing | fifo
    reports: int = 1  # sent / warned: events the file holds

    def write(self, directory: Path) -> Path:
        path = directory / self.filename
        if self.kind == "directory":
            path.mkdir()
        elif self.kind == "fifo":
            os.mkfifo(path)
        elif self.kind == "file":
            assert self.content is not None
            path.write_bytes(self.content)
        return path

    def error_mentions(self) -> list[str]:
        """What the one error line must contain: the file, the place, the quoted field, the rest."""
        quoted = [f"'{self.field}'"] if self.field else []
        return [self.filename, *([self.where] if self.where else []), *quoted, *self.mentions]


# ------------------------------------------------------------------------------------------------
# Building blocks


def csv_row(**changes: str) -> str:
    """The first good CSV row with some columns changed."""
    values = dict(zip(CSV_HEADER.split(","), GOOD_CSV_ROWS[0].split(",")))
    values.update(changes)
    return ",".join(values.values())


def csv_bytes(*rows: str, header: str = CSV_HEADER, newline: str = "\n") -> bytes:
    return (newline.join([header, *rows]) + newline).encode("utf-8")


def good_csv() -> str:
    return "\n".join([CSV_HEADER, *GOOD_CSV_ROWS]) + "\n"


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def json_value(**changes: Any) -> dict[str, Any]:
    """The good JSON report with its one value changed."""
    value = {"indicator_code": "staff_trained_in_ict", "numerator": 310, "denominator": 1240, **changes}
    return json_report(values=[value])


def cp1258(text: str) -> bytes:
    """``text`` as Windows-1258 writes Vietnamese: base letters precomposed, tone marks combining."""
    out, letter, tones = [], "", ""
    for ch in unicodedata.normalize("NFD", text) + " ":
        if unicodedata.combining(ch):
            tones, letter = (tones + ch, letter) if ch in TONES else (tones, letter + ch)
            continue
        out.append(unicodedata.normalize("NFC", letter) + tones)
        letter, tones = ch, ""
    return "".join(out)[:-1].encode("cp1258") if out else b""


def _line_of(data: bytes, byte: int) -> int:
    """The line (from 1) on which ``byte`` first occurs."""
    return data[:data.index(byte)].count(b"\n") + 1


def _random_bytes(seed: int, size: int, alphabet: range = range(256)) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.choice(alphabet) for _ in range(size))


def _refused(name: str, filename: str, content: bytes | None, where: str = "", field: str = "",
             *mentions: str, kind: str = "file") -> HostileFile:
    return HostileFile(name, filename, content, "refused", where, field, tuple(mentions), kind=kind)


def _csv_refused(name: str, where: str, field: str, *rows: str, mentions: tuple[str, ...] = ()) -> HostileFile:
    return _refused(name, f"{name}.csv", csv_bytes(*rows), where, field, *mentions)


def _json_refused(name: str, data: Any, where: str, field: str = "", *mentions: str) -> HostileFile:
    content = data if isinstance(data, bytes) else json_bytes(data)
    name = name if name.startswith("json") else f"json-{name}"
    return _refused(name, f"{name}.json", content, where, field, *mentions)


def _warned(name: str, content: bytes, *warnings: str, suffix: str = ".csv", reports: int = 1) -> HostileFile:
    return HostileFile(name, f"{name}{suffix}", content, "warned", warnings=warnings, reports=reports)


def _sent(name: str, filename: str, content: bytes, reports: int = 1) -> HostileFile:
    return HostileFile(name, filename, content, "sent", reports=reports)


# ------------------------------------------------------------------------------------------------
# The cases


def _bytes_and_encodings() -> list[HostileFile]:
    text = good_csv()
    tsv = text.replace(",", "\t")
    latin_1 = json.dumps(json_report(source_system="Hóa"), ensure_ascii=False, indent=2).encode("latin-1")
    return [
        _refused("binary-random", "binary-random.csv", _random_bytes(1, 4096), "", "", "not a text file"),
        _refused("binary-without-nul", "binary-without-nul.csv", _random_bytes(2, 600, range(0x80, 0x100)),
                 "line 1", "", "not UTF-8"),
        _refused("xlsx-saved-as-csv", "xlsx-saved-as-csv.csv", b"PK\x03\x04" + _random_bytes(3, 300), "", "",
                 "Excel workbook"),
        _refused("xls-saved-as-csv", "xls-saved-as-csv.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(300),
                 "", "", "Excel 97-2003"),
        _refused("pdf-saved-as-json", "pdf-saved-as-json.json", b"%PDF-1.7\n" + _random_bytes(4, 200), "", "",
                 "PDF"),
        _refused("cp1258-csv", "cp1258-csv.csv", CSV_HEADER.encode() + b"\n" + cp1258(GOOD_CSV_ROWS[0]) + b"\n",
                 "line 2", "", "not UTF-8", "cp1258"),
        _refused("cp1258-json", "cp1258-json.json",
                 b'{"source_system": "' + cp1258("Sở Thông tin") + b'"}', "line 1", "", "cp1258"),
        _refused("latin-1-json", "latin-1-json.json", latin_1, f"line {_line_of(latin_1, 0xF3)}", "", "not UTF-8"),
        _refused("utf16-without-bom", "utf16-without-bom.csv", text.encode("utf-16-le"), "", "", "UTF-16",
                 "byte-order mark"),
        _refused("utf16-bom-broken", "utf16-bom-broken.csv", codecs.BOM_UTF16_LE + text.encode("utf-16-le")[:-1],
                 "", "", "UTF-16"),
        _refused("nul-in-a-cell", "nul-in-a-cell.csv", csv_bytes(csv_row(unit_name="S\x00 Nội vụ")), "line 2",
                 "", "NUL"),
        _sent("utf16-excel-unicode-text", "utf16-excel-unicode-text.csv", codecs.BOM_UTF16_LE + tsv.encode("utf-16-le")),
        _sent("utf16-le-bom-csv", "utf16-le-bom-csv.csv", codecs.BOM_UTF16_LE + text.encode("utf-16-le")),
        _sent("utf16-be-bom-json", "utf16-be-bom-json.json",
              codecs.BOM_UTF16_BE + json.dumps(json_report(), ensure_ascii=False).encode("utf-16-be")),
        _sent("utf32-bom-tsv", "utf32-bom-tsv.tsv", codecs.BOM_UTF32_LE + tsv.encode("utf-32-le")),
        _sent("utf8-bom-crlf", "utf8-bom-crlf.csv", codecs.BOM_UTF8 + text.replace("\n", "\r\n").encode()),
        _sent("semicolons", "semicolons.csv", text.replace(",", ";").encode()),
    ]


def _not_files() -> list[HostileFile]:
    return [
        _refused("empty", "empty.csv", b"", "", "", "empty"),
        _refused("empty-json", "empty-json.json", b"", "", "", "empty"),
        _refused("whitespace-only", "whitespace-only.json", b" \r\n\t\n", "", "", "empty"),
        _refused("missing", "missing.csv", None, "", "", "no such file", kind="missing"),
        _refused("directory", "directory.csv", None, "", "", "directory", kind="directory"),
        _refused("fifo", "fifo.csv", None, "", "", "not a regular file", kind="fifo"),
        _refused("spreadsheet-suffix", "report.xlsx", b"PK\x03\x04", "", "", ".csv"),
    ]


def _csv_structure() -> list[HostileFile]:
    header = CSV_HEADER
    return [
        _refused("header-only", "header-only.csv", csv_bytes(), "", "", "no reports"),
        _refused("wrong-header", "wrong-header.csv", csv_bytes(*GOOD_CSV_ROWS, header=header.replace(",period,", ",quarter,")),
                 "", "", "missing columns ['period']"),
        _refused("no-header", "no-header.csv", csv_bytes(GOOD_CSV_ROWS[1], header=GOOD_CSV_ROWS[0]), "", "",
                 "missing columns"),
        _refused("unknown-column", "unknown-column.csv", csv_bytes(csv_row() + ",x", header=header + ",comment"),
                 "", "", "unknown columns ['comment']"),
        _refused("repeated-column", "repeated-column.csv", csv_bytes(csv_row() + ",4", header=header + ",value"),
                 "", "", "['value']", "more than once"),
        _csv_refused("too-many-fields", "line 3", "", GOOD_CSV_ROWS[0], csv_row() + ",extra", mentions=("16 fields",)),
        _csv_refused("too-few-fields", "line 2", "", csv_row().rsplit(",", 2)[0], mentions=("13 fields",)),
        # The quote runs to the end of the file: one row of 4 fields.
        _csv_refused("unterminated-quote", "line 2", "", csv_row(unit_name='"Sở Nội vụ'), mentions=("4 fields",)),
        _csv_refused("empty-required-cell", "line 2", "source_system", csv_row(source_system="  ")),
        _csv_refused("rows-disagree", "line 3", "submitted_at", GOOD_CSV_ROWS[0],
                     GOOD_CSV_ROWS[1].replace("23:30:00", "23:31:00"), mentions=("differs from", "line 2")),
        _csv_refused("too-many-values", "line 2", "values",
                     *[csv_row(indicator_code=f"x{i}") for i in range(201)], mentions=("at most 200",)),
    ]


def _csv_fields() -> list[HostileFile]:
    cases = [
        ("control-character-in-name", "unit_name", {"unit_name": "Sở\x01Nội vụ"}, "control character"),
        ("ansi-escape-in-source", "source_system", {"source_system": "\x1b[31mred"}, "control character"),
        ("c1-control-in-name", "unit_name", {"unit_name": "Sở\x85Nội vụ"}, "control character"),
        ("newline-in-name", "unit_name", {"unit_name": '"Sở\nNội vụ"'}, "control character"),
        ("name-of-131072-characters", "unit_name", {"unit_name": "x" * LONG}, "131,072 characters"),
        ("unit-code-of-65-characters", "unit_code", {"unit_code": "3" * 65}, "at most 64"),
        ("indicator-of-131072-characters", "indicator_code", {"indicator_code": "i" * LONG}, "131,072"),
        ("source-of-129-characters", "source_system", {"source_system": "s" * 129}, "at most 128"),
        ("period-of-300-characters", "period", {"period": "2026Q3" * 50}, "at most 16"),
        ("numerator-not-a-number", "numerator", {"numerator": "abc"}, "not a number"),
        ("numerator-nan", "numerator", {"numerator": "nan"}, "not a finite number"),
        ("denominator-inf", "denominator", {"denominator": "inf"}, "not a finite number"),
        ("value-minus-infinity", "value", {"numerator": "", "denominator": "", "value": "-Infinity"}, "finite"),
        ("value-1e400", "value", {"numerator": "", "denominator": "", "value": "1e400"}, "finite"),
        ("numerator-of-131072-digits", "numerator", {"numerator": "9" * LONG}, "..."),
        ("revision-a-fraction", "revision", {"revision": "1.5"}, "whole number"),
        ("revision-superscript", "revision", {"revision": "²"}, "whole number"),
        ("submitted-in-year-0001", "submitted_at", {"submitted_at": "0001-01-01T00:00:00+07:00"}, "outside"),
        ("submitted-in-year-9999", "submitted_at", {"submitted_at": "9999-12-31T23:59:59-07:00"}, "outside"),
        ("submitted-in-year-0001-utc", "submitted_at", {"submitted_at": "0001-01-01T00:00:00Z"}, "outside"),
        ("submitted-without-zone", "submitted_at", {"submitted_at": "2026-09-20T23:30:00"}, "time zone"),
        ("submitted-not-a-time", "submitted_at", {"submitted_at": "20/09/2026"}, "ISO 8601"),
        ("period-out-of-range", "period", {"period": "2026Q5"}, "out of range"),
        ("period-year-0000", "period", {"period": "0000", "report_type": "YEARLY"}, "outside"),
        ("period-year-9999", "period", {"period": "9999Q4"}, "outside"),
        ("report-type-of-another-period", "report_type", {"report_type": "YEARLY"}, "does not match"),
        ("unknown-unit-kind", "ReportingUnit.kind", {"unit_kind": "VILLAGE"}, "does not fit"),
        ("province-of-three-digits", "province_code", {"province_code": "380"}, "2-digit"),
        ("province-superscript-digits", "province_code", {"province_code": "³⁸"}, "2-digit"),
        ("event-id-not-a-uuid", "event_id", {"event_id": "not-a-uuid"}, "not a UUID"),
        ("revision-past-an-int", "revision", {"revision": "9999999999"}, "does not fit"),
    ]
    return [_csv_refused(name, "line 2", column, csv_row(**changes), mentions=(text,))
            for name, column, changes, text in cases]


def _json_cases() -> list[HostileFile]:
    good = json.dumps(json_report())
    return [
        _json_refused("not-json", b'{"province_code": ', "", "", "not valid JSON"),
        _json_refused("json-lines-in-a-json-file", (good + "\n" + good).encode(), "", "", ".jsonl"),
        _json_refused("deeply-nested", b"[" * 100_000 + b"]" * 100_000, "", "", "nested too deeply"),
        _json_refused("deeply-nested-values", ('{"values": ' + "[" * 50_000 + "]" * 50_000 + "}").encode(),
                      "", "", "nested too deeply"),
        _json_refused("integer-of-5000-digits", ('{"revision": ' + "9" * 5000 + "}").encode(), "", "", "digits"),
        _json_refused("a-number", b"42", "", "", "found int"),
        _json_refused("null", b"null", "", "", "found NoneType"),
        _json_refused("empty-list", b"[]", "", "", "no reports"),
        _json_refused("item-not-an-object", [json_report(), [1, 2]], "report 2", "", "expected an object"),
        _json_refused("unit-a-string", json_report(reporting_unit="25.S03"), "report 1", "reporting_unit"),
        _json_refused("unit-missing", {k: v for k, v in json_report().items() if k != "reporting_unit"},
                      "report 1", "reporting_unit", "missing"),
        _json_refused("values-a-number", json_report(values=5), "report 1", "values"),
        _json_refused("value-a-string", json_report(values=["310/1240"]), "report 1", "values"),
        _json_refused("numerator-a-string", json_value(numerator="abc"), "report 1", "IndicatorValue.numerator"),
        _json_refused("numerator-true", json_value(numerator=True), "report 1", "IndicatorValue.numerator"),
        _json_refused("numerator-nan-literal", json_bytes(json_value()).replace(b"310", b"NaN"), "value 1",
                      "numerator", "finite"),
        _json_refused("denominator-infinity-literal", json_bytes(json_value()).replace(b"1240", b"Infinity"),
                      "value 1", "denominator", "finite"),
        _json_refused("value-minus-infinity-literal", json_bytes(json_value(value=1)).replace(b'"value": 1',
                      b'"value": -Infinity'), "value 1", "value", "finite"),
        _json_refused("numerator-1e400", json_bytes(json_value()).replace(b"310", b"1e400"), "value 1",
                      "numerator", "finite"),
        _json_refused("numerator-10-to-the-400", json_bytes(json_value()).replace(b"310", b"1" + b"0" * 400),
                      "value 1", "numerator", "too large"),
        _json_refused("misspelt-value-field", json_value(numerater=5), "value 1", "", "'numerater'"),
        _json_refused("unknown-report-field", json_report(comment="x"), "report 1", "", "'comment'"),
        _json_refused("submitted-at-a-number", json_report(submitted_at=1_750_000_000_000), "report 1",
                      "submitted_at", "as text"),
        _json_refused("submitted-in-year-0001", json_report(submitted_at="0001-01-01T00:00:00+07:00"), "report 1",
                      "submitted_at", "outside"),
        _json_refused("submitted-in-year-9999", json_report(submitted_at="9999-12-31T23:59:59-07:00"), "report 1",
                      "submitted_at", "outside"),
        _json_refused("lone-surrogate-in-name", json_bytes(json_report()).replace(b'"kind": "AGENCY"',
                      b'"kind": "AGENCY", "name": "\\ud800"'), "report 1", "reporting_unit.name", "control"),
        _json_refused("nul-escape-in-period", json_bytes(json_report()).replace(b'"2026S1"', b'"2026\\u0000S1"'),
                      "report 1", "period", "control character"),
        _json_refused("name-of-131072-characters", json_report(reporting_unit={"code": "25.S03", "kind": "AGENCY",
                      "name": "n" * LONG}), "report 1", "reporting_unit.name", "131,072 characters"),
        _json_refused("indicator-of-131072-characters", json_value(indicator_code="i" * LONG), "value 1",
                      "indicator_code", "131,072"),
        _json_refused("missing-period", {k: v for k, v in json_report(event_id=None).items() if k != "period"},
                      "report 1", "period", "missing"),
        _json_refused("event-id-a-number", json_report(event_id=7), "report 1", "event_id", "as text"),
        _json_refused("revision-true", json_report(revision=True), "report 1", "revision"),
        _json_refused("same-event-id-twice", [json_report(), json_report(period="2026S2")], "report 2",
                      "event_id", "also the id of"),
        _json_refused("same-report-twice", [json_report(event_id=None), json_report(event_id=None)], "report 2",
                      "event_id", "also the id of"),
        _refused("jsonl-bad-third-line", "jsonl-bad-third-line.jsonl",
                 "\n".join([good, json.dumps(json_report(period="2026S2", event_id="")), "{oops"]).encode(),
                 "line 3", "", "not valid JSON"),
    ]


def _warning_cases() -> list[HostileFile]:
    """Sent after warnings: values the gate quarantines (the unit tests of the checks cover each rule)."""
    over = csv_row(indicator_code="agencies_on_data_network", numerator="12", denominator="10")
    return [
        _warned("unregistered-unit", csv_bytes(csv_row(unit_code="38.X99")), "'unit_code'"),
        _warned("unknown-indicator", csv_bytes(csv_row(indicator_code="computers_per_100_staf")), "'indicator_code'"),
        _warned("numerator-above-denominator", csv_bytes(over), "'numerator'", "ratio 120"),
        _warned("negative-numerator", csv_bytes(csv_row(numerator="-1")), "'numerator'", "ratio -1"),
        _warned("ratio-out-of-range", csv_bytes(csv_row(numerator="400")), "ratio 400"),
        _warned("indicator-twice", csv_bytes(GOOD_CSV_ROWS[0], csv_row(numerator="87")), "reported twice"),
        _warned("submitted-before-the-period", csv_bytes(csv_row(submitted_at="2026-05-01T08:00:00+07:00")),
                "'submitted_at'"),
        _warned("json-numerator-above-denominator", json_bytes(json_value(numerator=1300)), "'numerator'",
                "ratio 104", suffix=".json"),
        _warned("two-reports-one-unregistered", csv_bytes(GOOD_CSV_ROWS[0], csv_row(unit_code="38.X98")),
                "'unit_code'", reports=2),
    ]


def _good_variants() -> list[HostileFile]:
    lines = "\n".join([json.dumps(json_report()), "", json.dumps(json_report(period="2026S2", event_id=""))])
    return [_sent("json-lines", "json-lines.jsonl", lines.encode(), reports=2),
            _sent("upper-case-event-id", "upper-case-event-id.json",
                  json_bytes(json_report(event_id=json_report()["event_id"].upper())))]


CASES: tuple[HostileFile, ...] = tuple(
    _bytes_and_encodings() + _not_files() + _csv_structure() + _csv_fields() + _json_cases() + _warning_cases()
    + _good_variants())
assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"
assert len({c.filename for c in CASES}) == len(CASES), "file names must be unique"


def case(name: str) -> HostileFile:
    return next(c for c in CASES if c.name == name)


def by_outcome(*outcomes: str) -> list[HostileFile]:
    return [c for c in CASES if c.outcome in outcomes]
