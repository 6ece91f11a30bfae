"""GX Data Docs for gate runs: real GX validation on a local Spark, real GX HTML.

Two tiny batches (one passing, one with a negative numerator) are validated by
``run_suite`` once per module; the tests read the HTML GX writes. Rows come from the
quality-gate tests' ``value_row``, which is kept in step with the suite file.
"""
from __future__ import annotations

import ast
import html
import json
import re
import urllib.parse
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from test_quality_gate import SUITE_PARAMETERS, SUITE_PATH, frame, value_row

from readiness.quality import data_docs
from readiness.quality.data_docs import build_data_docs, index_path
from readiness.quality.gate import KEY_COLUMNS, GateResult, load_suite, run_suite

SUITE = "silver_report_values"
PERIOD = "2026Q3"
PASS_RUN = "run-2026-10-01T04:00Z"
FAIL_RUN = "run-2026-10-02T04:00Z"


@pytest.fixture(scope="module")
def results(spark: SparkSession) -> tuple[GateResult, GateResult]:
    """(passing, failing) gate results; the failing batch breaks one row rule, which does not raise."""
    suite = load_suite(SUITE_PATH, SUITE_PARAMETERS)
    passing = run_suite(frame(spark, [value_row("ok-1"), value_row("ok-1", "ICT02")]), suite, KEY_COLUMNS)
    failing = run_suite(frame(spark, [value_row("ok-1"), value_row("e16", numerator=-1.0)]), suite, KEY_COLUMNS)
    assert passing.validation.success and not failing.validation.success
    return passing, failing


@pytest.fixture(scope="module")
def site(results: tuple[GateResult, GateResult], tmp_path_factory: pytest.TempPathFactory) -> dict:
    passing, failing = results
    site_dir = tmp_path_factory.mktemp("var") / "data_docs"
    pass_page = build_data_docs(passing, site_dir, PASS_RUN, PERIOD)
    fail_page = build_data_docs(failing, site_dir, FAIL_RUN, PERIOD)
    return {"dir": site_dir, "pass": pass_page, "fail": fail_page}


# --------------------------------------------------------------------------- reading GX's HTML


def text(fragment: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    fragment = re.sub(r"<(script|style)\b.*?</\1>", " ", fragment, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def index_entries(site_dir: Path) -> list[dict[str, str]]:
    """Rows of the index's validation table, in page order: run name, link, status.

    GX writes each index table's rows as a Python-literal list (``data: [...]``) in the page."""
    page = index_path(site_dir).read_text(encoding="utf-8")
    tables = []
    for match in re.finditer(r"data: \[", page):
        start = match.end() - 1
        end = page.index("]", start)
        while True:  # the first "]" that closes a valid literal
            try:
                tables.append(ast.literal_eval(page[start : end + 1]))
                break
            except SyntaxError:
                end = page.index("]", end + 1)
    (runs,) = [rows for rows in tables if rows and "run_name" in rows[0]]
    return [
        {"run_name": r["run_name"], "link": r["_table_row_link_path"], "status": r["_validation_success_text"]}
        for r in runs
    ]


def link(page: Path, site_dir: Path) -> str:
    """The index's link to ``page`` (GX URL-quotes each path part)."""
    return urllib.parse.quote(str(page.relative_to(site_dir.resolve())))


def expectation_rows(page: str) -> list[tuple[str, bool, str]]:
    """(column heading, success, expectation cell text) for every expectation on a validation page.

    GX renders one table per column section; row R's cells have ids
    ``section-S-content-block-B-cell-R-{1: status, 2: expectation, 3: observed value}``.
    """
    rows = []
    for match in re.finditer(r'<td id="(section-(\d+)-content-block-\d+-cell-\d+)-1"[^>]*>(.*?)</td>', page, re.S):
        prefix, section, status = match.groups()
        if "fa-check-circle" not in status and "fa-times" not in status:
            continue  # not an expectation table (e.g. the statistics)
        start = page.index(f'id="{prefix}-2"')
        cell = page[start : page.rindex("<td", start, page.index(f'id="{prefix}-3"', start))]
        header = re.search(rf'id="section-{section}-content-block-1-header".*?</h5>', page, re.S)
        assert header is not None
        rows.append((text(header.group(0).split(">", 1)[1]), "fa-check-circle" in status, text("<" + cell)))
    return rows


# --------------------------------------------------------------------------- tests


def test_pages_and_layout(site: dict) -> None:
    site_dir = site["dir"]
    for key, run in (("pass", PASS_RUN), ("fail", FAIL_RUN)):
        page = site[key]
        assert page.is_file()
        rel = page.relative_to(site_dir.resolve())
        # validations/<suite>/<suite>__<period>__<run>/<run time>/<period>.html
        assert rel.parts[:3] == ("validations", SUITE, f"{SUITE}__{PERIOD}__{run}")
        assert rel.name == f"{PERIOD}.html"
    assert index_path(site_dir).is_file()
    assert (site_dir / "expectations" / f"{SUITE}.html").is_file()  # the pages link to it
    assert (site_dir / "static" / "styles").is_dir()


def test_index_lists_both_runs_newest_first(site: dict) -> None:
    site_dir = site["dir"].resolve()
    assert index_entries(site_dir) == [
        {"run_name": f"{SUITE}__{PERIOD}__{FAIL_RUN}", "link": link(site["fail"], site_dir),
         "status": "Failed"},
        {"run_name": f"{SUITE}__{PERIOD}__{PASS_RUN}", "link": link(site["pass"], site_dir),
         "status": "Success"},
    ]


def test_failing_page_shows_the_failed_expectation_and_its_unexpected_count(
    site: dict, results: tuple[GateResult, GateResult]
) -> None:
    page = site["fail"].read_text(encoding="utf-8")
    assert "Status: Failed" in text(page)
    assert "Unsuccessful Expectations 1" in text(page)
    rows = expectation_rows(page)
    assert len(rows) == len(results[1].outcomes)
    failed = [(column, cell) for column, ok, cell in rows if not ok]
    assert len(failed) == 1
    column, cell = failed[0]
    # expect_column_values_to_be_between(numerator, min_value=0), as GX words it, with the
    # unexpected count and the failing row's value and key from unexpected_index_list
    assert column == "numerator"
    assert cell.startswith("values must be greater than or equal to 0.0 .")
    assert "1 unexpected values found. 50% of 2 total rows." in cell
    assert "Unexpected Value Count event_id indicator_code -1.0 1 e16 ICT01" in cell


def test_passing_page_shows_success(site: dict, results: tuple[GateResult, GateResult]) -> None:
    page = site["pass"].read_text(encoding="utf-8")
    n = len(results[0].outcomes)
    assert "Status: Succeeded" in text(page)
    assert f"Successful Expectations {n} Unsuccessful Expectations 0" in text(page)
    rows = expectation_rows(page)
    assert len(rows) == n and all(ok for _, ok, _ in rows)
    assert f"Run Name {SUITE}__{PERIOD}__{PASS_RUN}" in text(page)


def test_rebuilding_a_run_replaces_its_page(results: tuple[GateResult, GateResult], tmp_path: Path) -> None:
    passing, failing = results
    first = build_data_docs(passing, tmp_path, "r1", PERIOD)
    assert build_data_docs(passing.validation, tmp_path, "r1", PERIOD) == first  # a bare GX result works too
    assert [e["run_name"] for e in index_entries(tmp_path)] == [f"{SUITE}__{PERIOD}__r1"]

    # the same run rebuilt from a newer result: still one entry, the old page and result are gone
    again = build_data_docs(failing, tmp_path, "r1", PERIOD)
    assert again != first and again.is_file() and not first.exists()
    assert [(e["run_name"], e["status"]) for e in index_entries(tmp_path)] == [(f"{SUITE}__{PERIOD}__r1", "Failed")]
    stored = list((tmp_path / "gx" / "uncommitted" / "validations").rglob("*.json"))
    assert len(stored) == 1

    # another period or run name is another run
    build_data_docs(passing, tmp_path, "r1", "2026Q4")
    build_data_docs(passing, tmp_path, "r2")
    assert sorted(e["run_name"] for e in index_entries(tmp_path)) == [
        f"{SUITE}__2026Q3__r1", f"{SUITE}__2026Q4__r1", f"{SUITE}__r2",
    ]


def test_stored_copy_caps_failing_rows_but_keeps_counts(
    results: tuple[GateResult, GateResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, failing = results
    monkeypatch.setattr(data_docs, "MAX_UNEXPECTED_ROWS", 0)
    page = build_data_docs(failing, tmp_path, "capped", PERIOD)
    (stored,) = (tmp_path / "gx" / "uncommitted" / "validations").rglob("*.json")
    (numerator,) = [
        r["result"] for r in json.loads(stored.read_text())["results"]
        if r["expectation_config"]["kwargs"].get("column") == "numerator" and not r["success"]
    ]
    assert numerator["unexpected_count"] == 1 and numerator["unexpected_index_list"] == []
    assert "1 unexpected values found." in text(page.read_text(encoding="utf-8"))
    # the caller's result is untouched
    assert any(r.result.get("unexpected_index_list") for r in failing.validation.results)


@pytest.mark.parametrize(
    ("run_name", "period_id", "message"),
    [
        ("a/b", None, "path component"),
        ("r1", "2026/Q3", "path component"),
        ("", None, "non-empty"),
        ("profiling-run", None, "profiling"),
    ],
)
def test_unusable_run_names_are_refused(
    results: tuple[GateResult, GateResult], tmp_path: Path, run_name: str, period_id: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_data_docs(results[0], tmp_path, run_name, period_id)
    assert not (tmp_path / "gx").exists()
