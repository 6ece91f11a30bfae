"""The analysts' tools on the real engines: a simulated national data set goes through the broker and
the pipeline jobs into the gold tables; then SQL through the Spark Thrift Server with beeline (a real
HiveServer2 client), ``readiness query`` to XLSX and CSV, time travel, and the HTML report rendered by
headless Chromium."""
from __future__ import annotations

import csv
import html
import io
import os
import re
import shutil
import subprocess
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from readiness.analyst import commands
from readiness.analyst.catalog import UNDESCRIBED, delta_columns, gold_tables, parse_as_of
from readiness.analyst.query import QueryError, run_query
from readiness.analyst.report import write_report
from readiness.analyst.sql_server import SqlServer, beeline, parse_csv2
from readiness.domain.periods import parse_period
from readiness.domain.reference import province_names
from readiness.settings import Settings
from support.report_probe import RENDER_PROBE_JS

pytestmark = pytest.mark.slow

AS_OF = datetime(2026, 11, 21, tzinfo=timezone.utc)
CHROMIUM = os.environ.get("READINESS_CHROMIUM", "/usr/bin/chromium")
INDEX = "gold_readiness_index"


@dataclass
class Published:
    settings: Settings
    first: str  # the earlier period, aggregated first
    second: str
    between: datetime  # after every gold commit of the first period, before any of the second


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def published(isolated, spark) -> Published:
    from readiness.contracts.encoding import TARGET_PLAN
    from readiness.contracts.producer import ReportProducer
    from readiness.dev.simulate import SimulationProfile, simulate
    from readiness.pipeline.aggregate import aggregate_period
    from readiness.pipeline.ingest import ingest_reports
    from readiness.pipeline.validate import validate_period

    started = time.monotonic()
    settings = isolated("analyst")
    batch = simulate(11, AS_OF, SimulationProfile(quarters=2, half_years=0, years=0))
    with ReportProducer(settings) as producer:
        result = producer.publish_reports(batch.reports)
        if getattr(batch, "targets", None):
            result = result.merge(producer.publish_reports(batch.targets, TARGET_PLAN, settings.topic_targets))
    assert result.not_acknowledged == 0
    ingest_reports(settings)
    first, second = sorted((p.id for p in batch.periods), key=lambda p: parse_period(p).window()[1])
    validate_period(settings, first)
    aggregate_period(settings, first)
    between = datetime.now(timezone.utc)
    time.sleep(1.0)
    validate_period(settings, second)
    aggregate_period(settings, second)
    print(f"published {len(batch.reports)} reports for {first} and {second} through the pipeline "
          f"in {time.monotonic() - started:.0f}s")
    return Published(settings, first, second, between)


def _delta(spark, settings: Settings, table: str, version: int | None = None):
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(settings.table_path(table))


# --- SQL over JDBC -------------------------------------------------------------------------------

def _results(output: str, prefixes: list[str]) -> list[tuple[list[str], list[list[str]]]]:
    """Split the output of a beeline script into its results, whose header lines start with ``prefixes``."""
    output = re.sub(r"(?m)^\d+: jdbc:hive2://\S*> ", "", output)  # beeline echoes its prompt
    blocks: list[list[str]] = []
    for line in output.splitlines():
        if len(blocks) < len(prefixes) and line.startswith(prefixes[len(blocks)]):
            blocks.append([])
        if blocks and line:
            blocks[-1].append(line)
    assert len(blocks) == len(prefixes), output[-3000:]
    return [parse_csv2("\n".join(b)) for b in blocks]


def test_sql_server_answers_like_the_delta_tables(published, spark, monkeypatch):
    settings = published.settings
    tables = gold_tables(settings)
    server = SqlServer(settings, port=_free_port())
    started = time.monotonic()
    server.start()
    try:
        print(f"SQL server up and registered in {time.monotonic() - started:.0f}s on {server.url}")
        monkeypatch.setenv("READINESS_VAR_DIR", str(settings.var_dir))
        assert commands.main(["serve", "--status", "--port", str(server.port)]) == 0
        assert server.status().pid is not None

        # One beeline session: queries as an analyst writes them, then the JDBC metadata a BI tool reads.
        columns = ["period_id", "basis", "methodology_id", "province_code", "province_name", "readiness_index", "rank"]
        ranking_sql = (f"SELECT {', '.join(columns)} FROM readiness.{INDEX} "
                       "ORDER BY period_id, basis, methodology_id, rank, province_code")
        completeness_sql = ("SELECT period_id, count(*) AS provinces, sum(expected) AS expected, sum(on_time) AS on_time, "
                            "sum(late) AS late, sum(missing) AS missing FROM readiness.gold_reporting_completeness "
                            "GROUP BY period_id ORDER BY period_id")
        script = [
            ranking_sql,
            completeness_sql,
            f"SELECT period_id AS version0_period, count(*) AS version0_rows FROM readiness_delta.{INDEX} VERSION AS OF 0 "
            "GROUP BY period_id",
            "SELECT code AS province, name FROM readiness.ref_provinces WHERE valid_to = DATE '9999-12-31' ORDER BY code",
        ]
        path = settings.var_dir / "analyst.sql"
        path.write_text("".join(f"{q};\n" for q in script) + "!tables\n" + "".join(f"!columns {t}\n" for t in tables),
                        encoding="utf-8")
        results = _results(beeline(server.url, file=path),
                           [",".join(columns), "period_id,provinces,", "version0_period,", "province,name",
                            "TABLE_CAT,TABLE_SCHEM,TABLE_NAME,TABLE_TYPE"]
                           + ["TABLE_CAT,TABLE_SCHEM,TABLE_NAME,COLUMN_NAME"] * len(tables))
        (_, ranking), (_, completeness), (_, version0), (_, names), listing, *described = results

        # The ranking, every row, through the HiveServer2 protocol.
        expected = (_delta(spark, settings, INDEX).select(*columns)
                    .orderBy("period_id", "basis", "methodology_id", "rank", "province_code").collect())
        assert len(ranking) == len(expected) >= 2 * 34
        for got, want in zip(ranking, expected):
            assert got[:5] == list(want[:5])
            assert float(got[5]) == want["readiness_index"] and int(got[6]) == want["rank"]
        shown = {r[4] for r in ranking}
        assert set(province_names().values()) <= shown  # the 34 Vietnamese names, intact
        assert all(unicodedata.is_normalized("NFC", n) for n in shown)

        # Aggregates over the completeness table, as a BI tool would ask.
        expected = spark.sql(completeness_sql.replace(
            "readiness.gold_reporting_completeness", f"delta.`{settings.table_path('gold_reporting_completeness')}`"))
        assert [[int(v) if i else v for i, v in enumerate(r)] for r in completeness] == \
            [list(r) for r in expected.collect()]

        # Time travel on the external Delta tables: version 0 holds the first period only.
        assert version0 == [[published.first, str(_delta(spark, settings, INDEX, 0).count())]]

        # Reference views: the Vietnamese names.
        assert dict(names) == province_names()

        # What DBeaver, Excel and Power BI see: described tables, every column commented.
        header, rows = listing
        listed = {(r[1], r[2]): (r[3], r[4]) for r in rows}
        for table in tables:
            kind, remarks = listed[("readiness", table)]
            assert kind == "VIEW" and len(remarks) > 40, (table, remarks)
            assert ("readiness_delta", table) in listed
        assert {("readiness", "ref_provinces"), ("readiness", "ref_indicators")} <= set(listed)
        for table, (header, rows) in zip(tables, described):
            remarks = {r[3]: r[header.index("REMARKS")] for r in rows if r[1] == "readiness"}
            assert list(remarks) == delta_columns(settings.table_path(table))
            assert all(c and c not in ("NULL", UNDESCRIBED) for c in remarks.values()), table
            if table == "gold_reporting_completeness":
                assert "Asia/Ho_Chi_Minh" in remarks["on_time"]
    finally:
        assert server.stop()
    assert not server.status().answering and server.pid() is None


# --- readiness query -----------------------------------------------------------------------------

def test_query_to_xlsx_and_csv(published, spark, tmp_path, monkeypatch):
    from openpyxl import load_workbook

    settings = published.settings
    monkeypatch.setenv("READINESS_VAR_DIR", str(settings.var_dir))
    sql = ("SELECT i.rank, i.province_code, i.province_name, p.name AS reference_name, i.readiness_index "
           "FROM readiness.gold_readiness_index i JOIN ref_provinces p "
           "ON p.code = i.province_code AND p.valid_to = DATE '9999-12-31' "
           f"WHERE i.period_id = '{published.second}' AND i.basis = 'restated_2025' AND i.methodology_id = 'ict-index' "
           "ORDER BY i.rank, i.province_code")
    xlsx, csv_path = tmp_path / "ranking.xlsx", tmp_path / "ranking.csv"
    assert commands.main(["query", sql, "--xlsx", str(xlsx), "--csv", str(csv_path), "--bom"]) == 0

    expected = (_delta(spark, settings, INDEX)
                .where(f"period_id = '{published.second}' AND basis = 'restated_2025' AND methodology_id = 'ict-index'")
                .orderBy("rank", "province_code").select("rank", "province_code", "province_name", "readiness_index")
                .collect())
    names = province_names()
    book = load_workbook(xlsx)
    rows = list(book["result"].iter_rows(values_only=True))
    assert rows[0] == ("rank", "province_code", "province_name", "reference_name", "readiness_index")
    assert rows[1:] == [(r["rank"], r["province_code"], r["province_name"], names[r["province_code"]],
                         r["readiness_index"]) for r in expected]
    assert len(rows) == 35 and ("79", "Hồ Chí Minh") in {(r[1], r[3]) for r in rows}
    about = dict(list(book["about"].iter_rows(values_only=True))[1:])
    assert about["query"] == sql and f"{INDEX}@v" in about["tables"]

    data = csv_path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    text_rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert text_rows[0] == list(rows[0])
    assert text_rows[1:] == [[str(r[0]), r[1], r[2], r[3], repr(r[4])] for r in rows[1:]]


def test_query_as_of_reads_the_tables_as_published_then(published, spark):
    settings, first, second = published.settings, published.first, published.second
    sql = f"SELECT DISTINCT period_id FROM {INDEX} ORDER BY period_id"

    def periods(as_of):
        result, _ = run_query(settings, sql, as_of, spark=spark)
        return [r[0] for r in result.rows]

    assert periods(None) == sorted([first, second])
    assert periods(parse_as_of(published.between.isoformat())) == [first]
    assert periods(parse_as_of(f"{INDEX}@0")) == [first]
    assert periods(parse_as_of("0")) == [first]
    # The same through the database name the JDBC server uses.
    result, snapshot = run_query(settings, f"SELECT count(*) FROM readiness.{INDEX}", parse_as_of("v0"), spark=spark)
    assert result.rows == [(_delta(spark, settings, INDEX, 0).count(),)] and snapshot.tables[INDEX] == 0
    with pytest.raises(QueryError, match="left out: not published yet"):
        run_query(settings, sql, parse_as_of("2020-01-01"), spark=spark)


# --- the report in a browser ---------------------------------------------------------------------

def _chromium() -> str:
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if path is None:
        pytest.fail(f"headless Chromium is needed to render the report and {CHROMIUM} is missing: "
                    "apt-get update && apt-get install -y chromium (make test installs it)")
    return path


def _chromium_run(profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--force-device-scale-factor=1", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    return proc


def test_report_renders_in_chromium(published, spark, tmp_path):
    from PIL import Image

    settings = published.settings
    # A report as analysts get it holds no script: the render probe is this test's own.
    plain = write_report(settings, None, tmp_path / "plain", spark=spark)
    assert "<script" not in plain.read_text(encoding="utf-8")
    path = write_report(settings, None, tmp_path / "report", spark=spark, probe_js=RENDER_PROBE_JS)
    assert path.name == f"readiness-report-{published.second}.html"
    page = path.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing from the network
    assert page.count("<script>") == 1 and RENDER_PROBE_JS in page
    url = path.resolve().as_uri()

    dom = _chromium_run(tmp_path / "profile", "--window-size=1400,4000", "--dump-dom", url).stdout.decode("utf-8")
    figures = re.findall(r'<figure class="chart" id="([a-z-]+)"[^>]*?data-drawn-elements="(\d+)"'
                         r'[^>]*?data-rendered-box="(\d+),(\d+),(\d+),(\d+)"', dom)
    # The fixture publishes each 2025 province's plan for the year (simulate's target plans), so the
    # period has targets for all 34 provinces and the attainment chart must be there and drawn: a
    # placeholder instead of it is a failure, not an acceptable outcome.
    assert "gold_target_attainment" in gold_tables(settings)
    attainment = _delta(spark, settings, "gold_target_attainment").where(f"period_id = '{published.second}'")
    target_provinces = {r["province_code"] for r in attainment.select("province_code").distinct().collect()}
    assert target_provinces == set(province_names()), sorted(target_provinces)
    assert attainment.where("attainment_ratio IS NOT NULL").count() > 0
    expected = ["chart-ranking", "chart-subindex", "chart-targets", "chart-compliance", "chart-trend"]
    assert [f[0] for f in figures] == expected
    assert "No targets published for this period" not in dom and 'id="no-targets"' not in dom
    targets_figure = re.search(r'<figure class="chart" id="chart-targets".*?</figure>', dom, re.S).group(0)
    targets_text = unicodedata.normalize("NFC", html.unescape(targets_figure))
    assert all(f"{name} (" in targets_text for name in province_names().values())  # "<name> (k/n met)" labels
    minimum = {"chart-ranking": 34 * 2, "chart-subindex": 34 * 3, "chart-targets": 34 * 2,
               "chart-compliance": 34 * 8, "chart-trend": 34 * 3}
    for chart, drawn, _, _, width, height in figures:
        assert int(drawn) >= minimum[chart], (chart, drawn)
        assert int(width) > 300 and int(height) > 300, (chart, width, height)
    text = unicodedata.normalize("NFC", html.unescape(dom))
    missing = [name for name in province_names().values() if name not in text]
    assert not missing and len(province_names()) == 34

    height = int(re.search(r'data-document-height="(\d+)"', dom).group(1))
    shot = tmp_path / "report.png"
    _chromium_run(tmp_path / "profile", f"--window-size=1400,{height}", f"--screenshot={shot}", url)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, height)
    for chart, _, left, top, width, height_ in figures:
        crop = image.crop((int(left), int(top), int(left) + int(width), int(top) + int(height_)))
        colours = crop.getcolors(maxcolors=1 << 20)
        white = sum(n for n, c in colours if min(c) > 245)
        assert len(colours) > 50 and white < 0.97 * crop.width * crop.height, chart
    kept = Path(os.environ.get("READINESS_REPORT_SHOT", settings.var_dir / "report.png"))
    shutil.copyfile(shot, kept)
    print(f"report {path}; screenshot {kept} ({image.size[0]}x{image.size[1]})")
