"""`read_reports`: a province's CSV or JSON report file into report-submission records.

What the README promises provinces ("For provinces: publishing reports"): a CSV has one row per
indicator value with named columns, a JSON file holds one report object or a list shaped like
``schemas/report_submission.avsc``; every report is validated, and a bad field is named in one line
with its file and line (``my_report.csv line 7: field 'numerator': 'abc' is not a number``).
Every problem is a ``ReportFileError``: no other exception type reaches the caller.
"""
from __future__ import annotations

import codecs
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from readiness.contracts.report_files import ReportFileError, read_located, read_reports, select_events
from support.hostile_files import by_outcome, case, good_csv
from support.hostile_files import csv_row as row
from support.report_files import CSV_HEADER, GOOD_CSV_ROWS, json_report, write_csv, write_json

# Name-based ids (uuid5 of the module's namespace and "province|unit|report type|period|revision"):
# the same file sent twice carries the same ids, which is what the platform deduplicates on.
ID_38_S02_2026Q3_REV0 = "4f0c321b-3c70-562c-ad14-0a7d6f8b2a65"
ID_25_S03_2026S1_REV0 = "0f1c85d0-e03c-580f-a0b7-9ebecbaed240"
ID_25_S03_2026_REV0 = "82e7eae5-2963-535c-8f4a-f1574159833d"

GOOD_CSV_REPORT = {
    "event_id": ID_38_S02_2026Q3_REV0,
    "province_code": "38",
    "reporting_unit": {"code": "38.S02", "kind": "AGENCY", "name": "Sở Nội vụ Thanh Hóa"},
    "report_type": "QUARTERLY",
    "period": "2026Q3",
    "values": [
        {"indicator_code": "computers_per_100_staff", "numerator": 88.0, "denominator": 100.0, "value": None,
         "unit": None},
        {"indicator_code": "it_staff", "numerator": None, "denominator": None, "value": 4.0, "unit": "count"},
    ],
    "revision": 0,
    "submitted_at": datetime(2026, 9, 20, 16, 30, tzinfo=timezone.utc),  # 23:30 Hanoi time
    "source_system": "thanhhoa-dic",
}

ALL_COLUMNS = ("['province_code', 'unit_code', 'unit_kind', 'unit_name', 'report_type', 'period', "
               "'indicator_code', 'numerator', 'denominator', 'value', 'value_unit', 'revision', 'submitted_at', "
               "'source_system', 'event_id']")


# ------------------------------------------------------------------------------------------------
# Good files


def test_csv_rows_of_one_report_become_one_report_with_its_values(tmp_path):
    path = write_csv(tmp_path / "thanhhoa.csv", *GOOD_CSV_ROWS)
    assert read_reports(path) == [GOOD_CSV_REPORT]


def test_csv_rows_of_two_units_are_two_reports_in_file_order(tmp_path):
    path = write_csv(tmp_path / "two.csv", GOOD_CSV_ROWS[0],
                     row(unit_code="38.S03", unit_name="", indicator_code="it_staff", numerator="", denominator="",
                         value="2", value_unit="count", revision="1", event_id="0b6f4a9e-2f61-4d39-9c55-2a0f8f2f6c11"),
                     GOOD_CSV_ROWS[1])
    first, second = read_reports(path)
    assert first == GOOD_CSV_REPORT  # its two rows are lines 2 and 4
    assert second == {**GOOD_CSV_REPORT, "event_id": "0b6f4a9e-2f61-4d39-9c55-2a0f8f2f6c11",  # given: kept
                      "reporting_unit": {"code": "38.S03", "kind": "AGENCY", "name": None}, "revision": 1,
                      "values": [{"indicator_code": "it_staff", "numerator": None, "denominator": None, "value": 2.0,
                                  "unit": "count"}]}


def test_csv_saved_by_excel_with_a_byte_order_mark_and_lower_case_enums(tmp_path):
    path = tmp_path / "excel.csv"
    lower = [r.replace(",AGENCY,", ",agency,").replace(",QUARTERLY,", ",quarterly,") for r in GOOD_CSV_ROWS]
    path.write_bytes(codecs.BOM_UTF8 + ("\r\n".join([CSV_HEADER, *lower]) + "\r\n").encode("utf-8"))
    assert read_reports(path) == [GOOD_CSV_REPORT]


def test_json_object_gets_the_schema_defaults(tmp_path):
    path = write_json(tmp_path / "phutho.json", json_report())
    assert read_reports(path) == [{
        "event_id": "0b6f4a9e-2f61-4d39-9c55-2a0f8f2f6c11",
        "province_code": "25",
        "reporting_unit": {"code": "25.S03", "kind": "AGENCY", "name": None},
        "report_type": "SIX_MONTHLY",
        "period": "2026S1",
        "values": [{"indicator_code": "staff_trained_in_ict", "numerator": 310, "denominator": 1240, "value": None,
                    "unit": None}],
        "revision": 1,
        "submitted_at": datetime(2026, 6, 18, 9, 15, tzinfo=timezone.utc),
        "source_system": "phutho-egov",
    }]


def test_json_list_of_reports_without_event_id_or_revision(tmp_path):
    second = json_report(period="2026", report_type="YEARLY", submitted_at="2026-12-10T08:00:00+07:00")
    first = json_report()
    for report in (first, second):
        del report["event_id"], report["revision"]
    path = write_json(tmp_path / "phutho.json", [first, second])
    reports = read_reports(path)
    assert [(r["event_id"], r["revision"], r["report_type"], r["period"], r["submitted_at"]) for r in reports] == [
        (ID_25_S03_2026S1_REV0, 0, "SIX_MONTHLY", "2026S1", datetime(2026, 6, 18, 9, 15, tzinfo=timezone.utc)),
        (ID_25_S03_2026_REV0, 0, "YEARLY", "2026", datetime(2026, 12, 10, 1, 0, tzinfo=timezone.utc)),
    ]
    assert read_reports(path) == reports  # the same file gives the same ids again


# ------------------------------------------------------------------------------------------------
# Bad files: one line naming the file, the line (CSV) or report (JSON), and the field


def csv_case(*rows: str, header: str = CSV_HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def json_case(data: str) -> bytes:
    return data.encode("utf-8")


def json_obj(*, drop: tuple[str, ...] = (), indent: int | None = None, **changes) -> bytes:
    report = json_report(**changes)
    for field in drop:
        del report[field]
    return json.dumps(report, ensure_ascii=False, indent=indent).encode("utf-8")


BAD_FILES = [
    pytest.param("r.csv", csv_case(GOOD_CSV_ROWS[0], GOOD_CSV_ROWS[1].replace(",,,4,", ",abc,,4,")),
                 "r.csv line 3: field 'numerator': 'abc' is not a number", id="csv-bad-number"),
    pytest.param("r.csv", csv_case(GOOD_CSV_ROWS[0], "", row(denominator="1O0")),
                 "r.csv line 4: field 'denominator': '1O0' is not a number", id="csv-bad-number-after-blank-line"),
    pytest.param("r.csv", csv_case(*GOOD_CSV_ROWS, header=CSV_HEADER.replace(",period,", ",quarter,")),
                 f"r.csv: missing columns ['period'] and unknown columns ['quarter']; expected {ALL_COLUMNS}",
                 id="csv-missing-column"),
    pytest.param("r.csv", csv_case(row(unit_code=" ")),
                 "r.csv line 2: field 'unit_code' is empty", id="csv-empty-required-value"),
    pytest.param("r.csv", csv_case(row(revision="1.5")),
                 "r.csv line 2: field 'revision': '1.5' is not a whole number", id="csv-bad-revision"),
    pytest.param("r.csv", csv_case(GOOD_CSV_ROWS[0], row(report_type="MONTHLY")),
                 "r.csv line 3: invalid field 'report_type': value 'MONTHLY' does not fit the schema",
                 id="csv-unknown-report-type"),
    pytest.param("r.csv", csv_case(row(period="2026Q5")),
                 "r.csv line 2: field 'period': period id '2026Q5': Q5 is out of range 1-4", id="csv-bad-period"),
    pytest.param("r.csv", csv_case(row(report_type="YEARLY")),
                 "r.csv line 2: field 'report_type': YEARLY does not match period 2026Q3",
                 id="csv-report-type-not-of-the-period"),
    pytest.param("r.csv", csv_case(row(unit_kind="VILLAGE")),
                 "r.csv line 2: invalid field 'ReportingUnit.kind': value 'VILLAGE' does not fit the schema",
                 id="csv-unknown-unit-kind"),
    pytest.param("r.csv", csv_case(row(province_code="380")),
                 "r.csv line 2: field 'province_code': '380' is not a 2-digit code", id="csv-bad-province"),
    pytest.param("r.csv", csv_case(row(submitted_at="2026-09-20T23:30:00")),
                 "r.csv line 2: field 'submitted_at': '2026-09-20T23:30:00' has no time zone (use Z or +07:00)",
                 id="csv-time-without-zone"),
    pytest.param("r.csv", csv_case(row(event_id="not-a-uuid")),
                 "r.csv line 2: field 'event_id': 'not-a-uuid' is not a UUID", id="csv-bad-event-id"),
    pytest.param("r.csv", csv_case(row(unit_name=""), row(unit_name="Thanh Hóa")).replace(b"\xc3\xb3", b"\xf3"),
                 "r.csv line 3: not UTF-8 (byte 0xf3; cp1258? save the file as UTF-8)", id="csv-latin-1"),
    pytest.param("r.json", json_obj(source_system="Thanh Hóa", indent=2).replace(b"\xc3\xb3", b"\xf3"),
                 "r.json line 19: not UTF-8 (byte 0xf3; cp1258? save the file as UTF-8)", id="json-latin-1"),
    pytest.param("r.csv", b"", "r.csv: the file is empty", id="csv-empty"),
    pytest.param("r.json", b" \n", "r.json: the file is empty", id="json-empty"),
    pytest.param("r.json", json_case('{"province_code": '),
                 "r.json: not valid JSON: Expecting value: line 1 column 19 (char 18)", id="json-not-json"),
    pytest.param("r.json", json_case('"2026Q3"'),
                 "r.json: expected a report object or a list of them, found str", id="json-a-string"),
    pytest.param("r.json", json_case("42"),
                 "r.json: expected a report object or a list of them, found int", id="json-a-number"),
    pytest.param("r.json", json_case("null"),
                 "r.json: expected a report object or a list of them, found NoneType", id="json-null"),
    pytest.param("r.json", json_case(f"[{json_obj().decode()}, [1, 2]]"),
                 "r.json report 2: expected an object, found list", id="json-list-item-not-an-object"),
    pytest.param("r.json", json_obj(report_type="MONTHLY"),
                 "r.json report 1 (25.S03 2026S1): invalid field 'report_type': value 'MONTHLY' does not fit the schema",
                 id="json-unknown-report-type"),
    pytest.param("r.json", json_case(f"[{json_obj().decode()}, {json_obj(period='2026S3').decode()}]"),
                 "r.json report 2 (25.S03 2026S3): field 'period': period id '2026S3': S3 is out of range 1-2",
                 id="json-bad-period-in-second-report"),
    pytest.param("r.json", json_obj(values=[{"indicator_code": "it_staff", "value": "abc"}]),
                 "r.json report 1 (25.S03 2026S1): invalid field 'IndicatorValue.value': value 'abc' does not fit "
                 "the schema", id="json-bad-number"),
    pytest.param("r.json", json_obj(values=5),
                 "r.json report 1 (25.S03 2026S1): invalid field 'values': value 5 does not fit the schema",
                 id="json-values-not-a-list"),
    pytest.param("r.json", json_obj(province_code=25, event_id=None),
                 "r.json report 1 (25.S03 2026S1): invalid field 'province_code': value 25 does not fit the schema",
                 id="json-province-code-a-number"),
    pytest.param("r.json", json_obj(reporting_unit="25.S03", event_id=None),
                 "r.json report 1: field 'reporting_unit': expected an object with code and kind, found str",
                 id="json-unit-not-an-object"),
    pytest.param("r.json", json_obj(event_id=None, drop=("period",)),
                 "r.json report 1: missing field 'period'", id="json-missing-field"),
    pytest.param("r.json", json_obj(submitted_at="18/06/2026"),
                 "r.json report 1 (25.S03 2026S1): field 'submitted_at': '18/06/2026' is not an ISO 8601 time",
                 id="json-bad-time"),
]


@pytest.mark.parametrize("name, content, message", BAD_FILES)
def test_a_bad_file_is_one_report_file_error_naming_where_and_the_field(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ReportFileError) as raised:
        read_reports(path)
    assert raised.type is ReportFileError
    assert str(raised.value) == message


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "absent.csv", "{path}: no such file"),
    (lambda tmp: write_csv(tmp / "header_only.csv"), "{path}: no reports in the file"),
    (lambda tmp: write_json(tmp / "none.json", []), "{path}: no reports in the file"),
    (lambda tmp: write_csv(tmp / "report.txt", *GOOD_CSV_ROWS),
     "{path}: expected a .csv or .json file (or .tsv, .jsonl)"),
], ids=["missing", "csv-header-only", "json-empty-list", "other-suffix"])
def test_a_file_without_reports_is_named_by_its_path(tmp_path: Path, make, message):
    path = make(tmp_path)
    with pytest.raises(ReportFileError) as raised:
        read_reports(path)
    assert raised.type is ReportFileError
    assert str(raised.value) == message.format(path=path)


# ------------------------------------------------------------------------------------------------
# Encodings, formats and ids


@pytest.mark.parametrize("hostile", [c for c in by_outcome("sent") if c.filename.endswith((".csv", ".tsv"))],
                         ids=lambda c: c.name)
def test_excel_encodings_and_separators_read_as_the_utf8_csv(tmp_path, hostile):
    """UTF-16/32 with a byte-order mark (Excel's "Unicode text", tab-separated), UTF-8 with a mark and
    CRLF, semicolons: the same reports as the plain UTF-8 comma-separated file."""
    plain = (tmp_path / "plain.csv")
    plain.write_text(good_csv(), encoding="utf-8")
    assert read_reports(hostile.write(tmp_path)) == read_reports(plain) == [GOOD_CSV_REPORT]


def test_utf16_json_reads_as_the_utf8_json(tmp_path):
    path = case("utf16-be-bom-json").write(tmp_path)
    assert read_reports(path) == read_reports(write_json(tmp_path / "plain.json", json_report()))


def test_json_lines_are_one_report_per_line_and_named_by_their_line(tmp_path):
    path = case("json-lines").write(tmp_path)  # lines 1 and 3, a blank line between
    located = read_located(path)
    assert [(item.where, item.report["period"]) for item in located] == [
        ("json-lines.jsonl line 1 (25.S03 2026S1)", "2026S1"), ("json-lines.jsonl line 3 (25.S03 2026S2)", "2026S2")]


def test_a_given_event_id_is_kept_in_its_canonical_form(tmp_path):
    given = "{0B6F4A9E-2F61-4D39-9C55-2A0F8F2F6C11}"
    (report,) = read_reports(write_json(tmp_path / "r.json", json_report(event_id=given)))
    assert report["event_id"] == "0b6f4a9e-2f61-4d39-9c55-2a0f8f2f6c11"


def test_a_cell_past_the_csv_modules_limit_is_named_and_the_limit_restored(tmp_path):
    import csv

    before = csv.field_size_limit()
    path = write_csv(tmp_path / "r.csv", row(unit_name="x" * 200_000))
    with pytest.raises(ReportFileError, match=r"^r.csv line 2: field 'unit_name': 200,000 characters, at most 512$"):
        read_reports(path)
    assert csv.field_size_limit() == before


def test_a_row_that_gives_the_event_id_of_its_report_differently_is_refused(tmp_path):
    path = write_csv(tmp_path / "r.csv", row(event_id="0b6f4a9e-2f61-4d39-9c55-2a0f8f2f6c11"), GOOD_CSV_ROWS[1])
    with pytest.raises(ReportFileError, match=r"^r.csv line 3: field 'event_id': differs from r.csv line 2"):
        read_reports(path)


def test_the_same_file_read_twice_gives_the_same_ids(tmp_path):
    path = write_csv(tmp_path / "r.csv", *GOOD_CSV_ROWS, row(unit_code="38.S03", revision="2"))
    first, second = read_reports(path), read_reports(path)
    assert [r["event_id"] for r in first] == [r["event_id"] for r in second]
    assert len({r["event_id"] for r in first}) == 2


# ------------------------------------------------------------------------------------------------
# --only-ids: the reports of a file whose ids a list names


def test_select_events_keeps_the_listed_reports_in_file_order(tmp_path):
    path = write_csv(tmp_path / "r.csv", *GOOD_CSV_ROWS, row(unit_code="38.S03"), row(unit_code="38.S04"))
    located = read_located(path)
    ids = [item.report["event_id"] for item in located]
    listed = tmp_path / "failed.txt"
    listed.write_text(f"# not acknowledged\n{ids[2].upper()}\n\n{ids[0]}\n", encoding="utf-8")
    assert [item.report["event_id"] for item in select_events(located, listed, "r.csv")] == [ids[0], ids[2]]


@pytest.mark.parametrize("content, message", [
    ("0b6f4a9e-2f61-4d39-9c55-2a0f8f2f6c11\n", "ids.txt line 1: event id 0b6f4a9e-2f61-4d39-9c55-2a0f8f2f6c11 is "
                                               "not in r.csv"),
    ("\nnot-an-id\n", "ids.txt line 2: 'not-an-id' is not an event id"),
], ids=["id-of-another-file", "not-an-id"])
def test_select_events_refuses_a_list_that_is_not_of_this_file(tmp_path, content, message):
    located = read_located(write_csv(tmp_path / "r.csv", *GOOD_CSV_ROWS))
    listed = tmp_path / "ids.txt"
    listed.write_text(content, encoding="utf-8")
    with pytest.raises(ReportFileError) as raised:
        select_events(located, listed, "r.csv")
    assert str(raised.value) == message
