"""The analysts' pure parts on tiny inputs: "as of" parsing and version picking, the text, CSV and XLSX
writers, the catalogue's comments and the SQL server's DDL, the report page. No engine starts here."""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from readiness.analyst.catalog import (
    COLUMN_COMMENTS,
    UNDESCRIBED,
    AsOf,
    AsOfError,
    Commit,
    column_comment,
    delta_columns,
    end_of_day,
    gold_tables,
    parse_as_of,
    pick_versions,
    reference_rows,
    sql_string,
    table_description,
)
from readiness.analyst.export import (
    QueryResult,
    csv_bytes,
    display_width,
    format_table,
    save_csv,
    text_value,
    write_xlsx,
)
from readiness.analyst.report import NO_TARGETS, ReportData, render_html
from readiness.analyst.sql_server import SqlServer, ddl_statements, jdbc_url, parse_csv2
from readiness.settings import load_settings

UTC = timezone.utc
HANOI = "Hà Nội"
HCMC = "Hồ Chí Minh"


# --- as of ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, moment", [
    # The end of the day in Asia/Ho_Chi_Minh (UTC+7) is 16:59:59.999999 UTC.
    ("2026-09-30", datetime(2026, 9, 30, 16, 59, 59, 999999, UTC)),
    ("2026-09-30T08:00", datetime(2026, 9, 30, 1, 0, tzinfo=UTC)),
    ("2026-09-30 08:00:00+07:00", datetime(2026, 9, 30, 1, 0, tzinfo=UTC)),
    ("2026-09-30T08:00:00Z", datetime(2026, 9, 30, 8, 0, tzinfo=UTC)),
    (" 2026-01-01 ", datetime(2026, 1, 1, 16, 59, 59, 999999, UTC)),
])
def test_as_of_moments(text, moment):
    parsed = parse_as_of(text)
    assert parsed.moment == moment and parsed.moment.tzinfo is not None
    assert parsed.version is None and parsed.table_versions == () and parsed.tag is None


def test_end_of_day_is_the_last_microsecond_in_hanoi():
    end = end_of_day(date(2026, 12, 31))
    assert end == datetime(2026, 12, 31, 16, 59, 59, 999999, UTC)
    assert end + timedelta(microseconds=1) == datetime(2027, 1, 1, tzinfo=timezone(timedelta(hours=7)))


@pytest.mark.parametrize("text, expected", [
    ("7", AsOf("7", version=7)),
    ("v12", AsOf("v12", version=12)),
    ("gold_readiness_index@3", AsOf("gold_readiness_index@3", table_versions=(("gold_readiness_index", 3),))),
    ("gold_a@1, gold_b@v2", AsOf("gold_a@1, gold_b@v2", table_versions=(("gold_a", 1), ("gold_b", 2)))),
    ("tag:published-2026Q3", AsOf("tag:published-2026Q3", tag="published-2026Q3")),
])
def test_as_of_versions_and_tags(text, expected):
    assert parse_as_of(text) == expected


@pytest.mark.parametrize("text", ["", "  ", "yesterday", "2026-13-01", "2026-02-30", "gold_a@1,gold_a@2",
                                  "gold_a@x", "tag:", "@3"])
def test_as_of_rejects(text):
    with pytest.raises(AsOfError):
        parse_as_of(text)


def _t(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 9, 30, hour, minute, tzinfo=UTC)


HISTORIES = {
    "gold_readiness_index": [Commit(0, _t(1)), Commit(1, _t(3), "published-2026Q2"), Commit(2, _t(5))],
    "gold_reporting_completeness": [Commit(0, _t(1, 1)), Commit(1, _t(3, 1))],
    "gold_target_attainment": [Commit(0, _t(4))],
}


def test_pick_versions_at_a_moment_leaves_out_tables_not_yet_published():
    picked = pick_versions(HISTORIES, parse_as_of("2026-09-30T10:30+07:00"))  # 03:30 UTC
    assert picked.versions == {"gold_readiness_index": 1, "gold_reporting_completeness": 1}
    assert list(picked.left_out) == ["gold_target_attainment"]
    assert "not published yet" in picked.left_out["gold_target_attainment"]
    assert pick_versions(HISTORIES, parse_as_of("2026-09-30")).versions == {
        "gold_readiness_index": 2, "gold_reporting_completeness": 1, "gold_target_attainment": 0}
    # A commit exactly at the moment counts.
    assert pick_versions(HISTORIES, AsOf("x", moment=_t(3))).versions["gold_readiness_index"] == 1


def test_pick_versions_by_version_number():
    picked = pick_versions(HISTORIES, parse_as_of("v1"))
    assert picked.versions == {"gold_readiness_index": 1, "gold_reporting_completeness": 1}
    assert picked.left_out == {"gold_target_attainment": "has no version 1 (versions 0..0)"}
    with pytest.raises(AsOfError, match="no gold table has Delta version 9"):
        pick_versions(HISTORIES, parse_as_of("9"))


def test_pick_versions_of_named_tables_reads_the_others_at_that_commit_time():
    # Version 1 was committed at 03:00; completeness version 1 only at 03:01.
    picked = pick_versions(HISTORIES, parse_as_of("gold_readiness_index@1"))
    assert picked.versions == {"gold_readiness_index": 1, "gold_reporting_completeness": 0}
    assert list(picked.left_out) == ["gold_target_attainment"]
    with pytest.raises(AsOfError, match="no Delta version 7"):
        pick_versions(HISTORIES, parse_as_of("gold_readiness_index@7"))
    with pytest.raises(AsOfError, match="not a gold table"):
        pick_versions(HISTORIES, parse_as_of("gold_nothing@0"))


def test_pick_versions_by_tag():
    picked = pick_versions(HISTORIES, parse_as_of("tag:published-2026Q2"))
    assert picked.versions == {"gold_readiness_index": 1, "gold_reporting_completeness": 0}
    with pytest.raises(AsOfError, match="tagged"):
        pick_versions(HISTORIES, parse_as_of("tag:nope"))


def test_no_as_of_reads_the_latest():
    assert pick_versions(HISTORIES, None).versions == {t: None for t in HISTORIES}


# --- writers -------------------------------------------------------------------------------------

RESULT = QueryResult(
    columns=["rank", "province_name", "readiness_index", "components", "missing_units", "note", "as_of"],
    types=["int", "string", "double", "map<string,double>", "array<string>", "string", "timestamp"],
    rows=[
        (1, HANOI, 0.8999, {"infrastructure": 0.95, "application": 0.5}, [], 'a "quoted", text', None),
        (12, HCMC, 0.5, {}, ["79.X01", "79.X02"], None, datetime(2026, 9, 20, 16, 59, 59, tzinfo=UTC)),
    ],
)


def test_text_values():
    assert text_value(None) == "" and text_value(None, "NULL") == "NULL"
    assert text_value(True) == "true" and text_value(0.1) == "0.1" and text_value(2.0) == "2.0"
    assert text_value(float("nan")) == "NaN"
    assert text_value({"a": 1.5, "b": None}) == '{"a": 1.5, "b": null}'
    assert text_value(["Hà Nội"]) == '["Hà Nội"]'
    assert text_value(datetime(2026, 9, 20, 23, 59, tzinfo=timezone(timedelta(hours=7)))) == "2026-09-20T16:59:00Z"
    assert text_value(date(2026, 9, 20)) == "2026-09-20"
    assert text_value(b"\xc3\x01") == "0xc301"


def test_format_table_aligns_and_right_aligns_numbers():
    assert format_table(RESULT) == "\n".join([
        "rank | province_name | readiness_index | components                                   | missing_units        | note             | as_of",
        "-----+---------------+-----------------+----------------------------------------------+----------------------+------------------+---------------------",
        '   1 | Hà Nội        |          0.8999 | {"infrastructure": 0.95, "application": 0.5} | []                   | a "quoted", text | NULL',
        '  12 | Hồ Chí Minh   |             0.5 | {}                                           | ["79.X01", "79.X02"] | NULL             | 2026-09-20T16:59:59Z',
        "(2 rows)",
    ])


def test_format_table_counts_combining_marks_as_zero_width():
    decomposed = unicodedata.normalize("NFD", HANOI)
    assert len(decomposed) > len(HANOI) and display_width(decomposed) == display_width(HANOI) == 6
    table = format_table(QueryResult(["name", "n"], ["string", "int"], [(decomposed, 1), ("Huế", 22)]))
    lines = table.splitlines()
    assert [display_width(line.split("|")[0]) for line in lines[2:4]] == [7, 7]
    assert format_table(QueryResult(["x"], ["int"], [])) == "x\n-\n(0 rows)"


def test_csv_rows_and_bom():
    expected = ("rank,province_name,readiness_index,components,missing_units,note,as_of\r\n"
                '1,Hà Nội,0.8999,"{""infrastructure"": 0.95, ""application"": 0.5}",[],"a ""quoted"", text",\r\n'
                '12,Hồ Chí Minh,0.5,{},"[""79.X01"", ""79.X02""]",,2026-09-20T16:59:59Z\r\n')
    assert csv_bytes(RESULT) == expected.encode("utf-8")
    assert csv_bytes(RESULT, bom=True) == b"\xef\xbb\xbf" + expected.encode("utf-8")


def test_save_csv_writes_utf8(tmp_path):
    path = save_csv(QueryResult(["name"], ["string"], [("Đắk Lắk",), ("line\nbreak",)]), tmp_path / "out" / "a.csv")
    assert path.read_bytes() == 'name\r\nĐắk Lắk\r\n"line\nbreak"\r\n'.encode("utf-8")


def test_xlsx_keeps_types_and_vietnamese(tmp_path):
    from openpyxl import load_workbook

    result = QueryResult(
        columns=["code", "name", "index", "rank", "ok", "day", "at", "components", "formula_like"],
        types=["string", "string", "double", "int", "boolean", "date", "timestamp", "map<string,double>", "string"],
        rows=[("01", HANOI, 0.8999, 1, True, date(2026, 9, 20), datetime(2026, 9, 20, 16, 59, 59, tzinfo=UTC),
               {"infrastructure": 0.95}, "=1+1"),
              ("79", HCMC, None, 2, False, None, None, None, "x")],
        about={"query": "SELECT 1", "as of": "2026-09-30"},
    )
    path = write_xlsx(result, tmp_path / "r.xlsx")
    book = load_workbook(path)
    assert book.sheetnames == ["result", "about"]
    rows = list(book["result"].iter_rows(values_only=True))
    assert rows == [
        ("code", "name", "index", "rank", "ok", "day", "at", "components", "formula_like"),
        ("01", HANOI, 0.8999, 1, True, datetime(2026, 9, 20), datetime(2026, 9, 20, 16, 59, 59),
         '{"infrastructure": 0.95}', "=1+1"),
        ("79", HCMC, None, 2, False, None, None, None, "x"),
    ]
    assert book["result"]["I2"].data_type == "s"  # text, not a formula
    assert book["result"].freeze_panes == "A2"
    about = dict(list(book["about"].iter_rows(values_only=True))[1:])
    assert about["query"] == "SELECT 1" and about["as of"] == "2026-09-30" and about["rows"] == "2"


# --- catalogue and DDL ---------------------------------------------------------------------------

GOLD_COLUMNS = {
    "gold_indicator_values": ["period_id", "report_type", "province_code", "indicator_code", "basis", "numerator_sum",
                              "denominator_sum", "value", "units_reported"],
    "gold_readiness_index": ["period_id", "basis", "methodology_id", "methodology_version", "province_code",
                             "province_name", "components", "readiness_index", "rank", "previous_rank", "rank_change",
                             "input_table", "input_version"],
    "gold_reporting_completeness": ["period_id", "report_type", "basis", "province_code", "expected", "received",
                                    "on_time", "late", "missing", "received_rate", "on_time_rate", "missing_units"],
    "gold_target_attainment": ["period_id", "province_code", "indicator_code", "plan_year", "plan_reference",
                               "plan_event_id", "plan_revision", "comparison", "target_value", "actual",
                               "attainment_ratio", "on_track", "status"],
}


def test_every_gold_column_is_described():
    for table, columns in GOLD_COLUMNS.items():
        assert "not described" not in table_description(table)
        for column in columns:
            assert column_comment(table, column) != UNDESCRIBED, (table, column)
    assert column_comment("gold_new", "surprise") == UNDESCRIBED
    assert "Asia/Ho_Chi_Minh" in COLUMN_COMMENTS["on_time"] and "UTC+07:00" in COLUMN_COMMENTS["period_id"]
    assert "percent" in COLUMN_COMMENTS["received_rate"]


def test_sql_string_escapes():
    assert sql_string("it's a \\ path") == "'it\\'s a \\\\ path'"


def _fake_delta_table(lake: Path, name: str, columns: list[str]) -> Path:
    """A real (one-row) Delta table with string columns, written by delta-rs."""
    import pyarrow as pa
    from deltalake import write_deltalake

    write_deltalake(str(lake / name), pa.table({c: pa.array(["x"], pa.string()) for c in columns}))
    return lake / name


def test_gold_tables_and_ddl_from_the_delta_logs(tmp_path):
    settings = load_settings(env="ci", var_dir=tmp_path)
    for table, columns in GOLD_COLUMNS.items():
        _fake_delta_table(settings.lake_dir, table, columns)
    _fake_delta_table(settings.lake_dir, "silver_indicator_values", ["x"])
    (settings.lake_dir / "gold_not_delta").mkdir()
    assert gold_tables(settings) == sorted(GOLD_COLUMNS)
    statements = ddl_statements(settings)
    assert statements[:2] == [s for s in statements if s.startswith("CREATE DATABASE")]
    for table, columns in GOLD_COLUMNS.items():
        location = str((settings.lake_dir / table).resolve())
        assert (f"CREATE TABLE IF NOT EXISTS readiness_delta.{table} USING DELTA LOCATION '{location}'"
                in statements)
        [view] = [s for s in statements if s.startswith(f"CREATE OR REPLACE VIEW readiness.{table} (")]
        for column in columns:
            assert f"`{column}` COMMENT {sql_string(column_comment(table, column))}" in view
        assert view.endswith(f"AS SELECT {', '.join(f'`{c}`' for c in columns)} FROM readiness_delta.{table}")
    ref = [s for s in statements if s.startswith("CREATE OR REPLACE VIEW readiness.ref_provinces")][0]
    assert "'Hà Nội'" in ref and "\n" not in ref
    assert not any("readiness_delta.silver" in s for s in statements)


def test_delta_columns_from_a_checkpoint(tmp_path):
    """The schema is found when the commits that set it are gone and only a checkpoint has it."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    path = str(tmp_path / "t")
    for n in range(3):
        write_deltalake(path, pa.table({"a": pa.array([n], pa.int64())}), mode="append")
    DeltaTable(path).create_checkpoint()
    write_deltalake(path, pa.table({"a": pa.array([9], pa.int64())}), mode="append")
    for commit in (tmp_path / "t" / "_delta_log").glob("*.json"):
        if int(commit.stem) < 2:  # cleaned up: the metaData action lives on only in the checkpoint
            commit.unlink()
    assert delta_columns(tmp_path / "t") == ["a"]


def test_reference_rows():
    rows = reference_rows()
    provinces = rows["ref_provinces"]
    current = [r for r in provinces if r[4] == date(9999, 12, 31)]
    assert len(provinces) == 63 + 34 and len(current) == 34
    assert all(r[5] == r[0] for r in current)
    assert all(unicodedata.is_normalized("NFC", r[1]) for r in provinces)
    assert ("01", HANOI) in {(r[0], r[1]) for r in current}
    assert {r[0] for r in rows["ref_indicators"]} >= {"computers_per_100_staff", "security_incidents"}


def test_beeline_csv2_parsing():
    output = ('0: jdbc:hive2://127.0.0.1:10000/readiness> period_id,name,components\n'
              '2026Q3,Hà Nội,"{""a"":1.0,""b"":0.5}"\n2026Q3,NULL,\n\n')
    assert parse_csv2(output) == (["period_id", "name", "components"],
                                  [["2026Q3", HANOI, '{"a":1.0,"b":0.5}'], ["2026Q3", "NULL", ""]])
    assert jdbc_url(10000) == "jdbc:hive2://127.0.0.1:10000/readiness"


# --- the report page -----------------------------------------------------------------------------

def tiny_report(targets=None) -> ReportData:
    names = {"01": HANOI, "79": HCMC, "46": "Huế"}
    ranking = [
        {"province_code": "01", "province_name": HANOI, "readiness_index": 0.81, "rank": 1, "previous_rank": 2,
         "rank_change": 1, "components": {"infrastructure": 0.9, "application": 0.72}},
        {"province_code": "79", "province_name": HCMC, "readiness_index": 0.7, "rank": 2, "previous_rank": 1,
         "rank_change": -1, "components": {"infrastructure": 0.8}},
        {"province_code": "46", "province_name": "Huế", "readiness_index": 0.7, "rank": 2, "previous_rank": None,
         "rank_change": None, "components": {"infrastructure": 0.6, "application": 0.8}},
    ]
    completeness = [{"province_code": c, "expected": 10, "received": 9, "on_time": 8, "late": 1, "missing": 1,
                     "missing_units": [f"{c}.X01"]} for c in names]
    trend = [{"period_id": p, "province_code": c, "readiness_index": v, "rank": 1}
             for p, shift in (("2026Q2", -0.05), ("2026Q3", 0.0)) for c, v in
             (("01", 0.81 + shift), ("79", 0.7 + shift), ("46", 0.7))]
    return ReportData("2026Q3", "restated_2025", "ict-index", "1", ranking, ["infrastructure", "application"],
                      completeness, targets, trend, names,
                      indicator_labels={"computers_per_100_staff": "Số máy tính trên 100 cán bộ công chức (per_100)"},
                      source="test", generated_at="now")


def test_report_page_without_targets():
    page = render_html(tiny_report(targets=None))
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "default-src 'none'" in page  # the browser may load nothing from the network
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page
    charts = re.findall(r'<figure class="chart" id="([a-z-]+)"', page)
    assert charts == ["chart-ranking", "chart-subindex", "chart-compliance", "chart-trend"]
    assert page.count("<svg ") == 4 and "<?xml" not in page
    assert f"{NO_TARGETS}." in page and "does not exist" in page
    for name in (HANOI, HCMC, "Huế"):
        assert name in page
    # ids are unique across the inline charts
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_report_page_with_targets_and_empty_targets():
    targets = [{"province_code": c, "indicator_code": i, "attainment_ratio": r, "on_track": (r or 0) >= 1,
                "status": "on_track" if (r or 0) >= 1 else "behind"}
               for c, i, r in (("01", "computers_per_100_staff", 1.2), ("79", "computers_per_100_staff", 0.8),
                               ("01", "security_incidents", None))]
    page = render_html(tiny_report(targets=targets))
    assert 'id="chart-targets"' in page and NO_TARGETS not in page
    assert "Hà Nội (1/2 met)" in page and "Hồ Chí Minh (0/1 met)" in page
    assert "Số máy tính trên 100 cán bộ công chức (per_100)" in page
    empty = render_html(tiny_report(targets=[]))
    assert f"{NO_TARGETS}." in empty and "holds no rows for 2026Q3" in empty


def test_the_sql_servers_driver_gets_the_profiles_jvm_options(tmp_path):
    """Its JVM is a Spark driver like the jobs': the ci profile's quick JIT and code cache reach it too."""
    def driver_options(env: str) -> list[str]:
        command = SqlServer(load_settings(env, environ={}, var_dir=tmp_path), port=10099).command()
        confs = [command[i + 1] for i, part in enumerate(command) if part == "--conf"]
        [options] = [c.split("=", 1)[1] for c in confs if c.startswith("spark.driver.extraJavaOptions=")]
        return options.split()

    ci = driver_options("ci")
    assert ci[0] == f"-Dderby.system.home={tmp_path / 'sql-server'}"
    assert ci[-2:] == ["-XX:TieredStopAtLevel=1", "-XX:ReservedCodeCacheSize=256m"]
    assert not [o for o in driver_options("local") if o.startswith("-XX:")]
