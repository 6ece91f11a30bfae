"""The report page from a hand-built ReportData (no Spark): its sections, escaping of the text it is
given, and the render probe present only when a test injects it."""
from __future__ import annotations

import html
import re
from importlib import resources

import pytest

from readiness.analyst.report import ReportData, render_html
from support.report_probe import RENDER_PROBE_JS

HANOI, HCMC, HUE = "Hà Nội", "Hồ Chí Minh", "Huế"
ODD = "Tỉnh <Thử> & Sơn"  # a name that is not valid HTML as it stands
SECTIONS = ["ranking", "subindexes", "targets", "compliance", "trend"]


def small_report(targets: list[dict] | None = None, notes: list[str] | None = None) -> ReportData:
    names = {"01": HANOI, "79": HCMC, "46": HUE, "99": ODD}
    ranking = [
        {"province_code": code, "province_name": names[code], "readiness_index": index, "rank": rank,
         "previous_rank": previous, "rank_change": None if previous is None else previous - rank,
         "components": {"infrastructure": index, "application": index - 0.1}}
        for code, index, rank, previous in (("01", 0.82, 1, 2), ("99", 0.75, 2, 1), ("79", 0.7, 3, 3),
                                            ("46", 0.6, 4, None))
    ]
    completeness = [{"province_code": code, "expected": 10, "received": 9, "on_time": 8, "late": 1, "missing": 1,
                     "missing_units": [f"{code}.U01"]} for code in names]
    trend = [{"period_id": period, "province_code": r["province_code"], "readiness_index": r["readiness_index"] + shift,
              "rank": r["rank"]} for period, shift in (("2026Q2", -0.03), ("2026Q3", 0.0)) for r in ranking]
    return ReportData("2026Q3", "restated_2025", "ict-index", "1", ranking, ["infrastructure", "application"],
                      completeness, targets, trend, names,
                      indicator_labels={"computers_per_100_staff": "Số máy tính trên 100 cán bộ (per_100)"},
                      source="hand-built", generated_at="2026-11-21T09:00:00+07:00", notes=notes or [])


def attainment() -> list[dict]:
    return [{"province_code": code, "indicator_code": "computers_per_100_staff", "attainment_ratio": ratio,
             "on_track": ratio >= 1, "status": "on_track" if ratio >= 1 else "behind"}
            for code, ratio in (("01", 1.1), ("99", 0.9), ("79", 1.0), ("46", 0.5))]


def test_sections_and_province_names():
    page = render_html(small_report(attainment()))
    assert page.startswith("<!DOCTYPE html>")
    assert re.findall(r'<section id="([a-z]+)">', page) == SECTIONS
    assert re.findall(r'<figure class="chart" id="([a-z-]+)"', page) == [
        "chart-ranking", "chart-subindex", "chart-targets", "chart-compliance", "chart-trend"]
    assert 'id="no-targets"' not in page
    for name in (HANOI, HCMC, HUE):
        assert name in page
    assert f"{html.escape(HANOI)} (1/1 met)" in page  # the targets chart's labels
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_text_is_escaped():
    page = render_html(small_report(attainment(), notes=["<b>bold</b> & <script>alert(1)</script>"]))
    assert ODD not in page and "<Thử>" not in page
    escaped = "Tỉnh &lt;Thử&gt; &amp; Sơn"
    assert page.count(escaped) >= 6  # the tables and the charts' SVG text alike
    assert re.search(r"<td>Tỉnh &lt;Thử&gt; &amp; Sơn</td>", page)  # ranking and missing-units tables
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;" in page
    assert "<script" not in page.lower()


def test_no_script_without_a_probe():
    for targets in (None, [], attainment()):
        page = render_html(small_report(targets))
        assert "<script" not in page.lower()
    assert 'id="no-targets"' in render_html(small_report(None))


def test_probe_is_injected_when_given():
    page = render_html(small_report(attainment()), probe_js=RENDER_PROBE_JS)
    assert page.count("<script>") == 1
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    assert script == RENDER_PROBE_JS  # as given: script text is not escaped
    assert page.index("</main>") < page.index("<script>") < page.index("</body>")  # after every chart
    assert "script-src 'unsafe-inline'" in page  # the CSP lets the inline probe run
    # Everything else is the page without the probe.
    assert page.replace(f"<script>{RENDER_PROBE_JS}</script>\n", "") == render_html(small_report(attainment()))


def test_probe_must_be_script_text():
    with pytest.raises(ValueError, match="</script"):
        render_html(small_report(), probe_js="1;</SCRIPT><img src=x>")


def test_template_ships_in_the_package():
    assert (resources.files("readiness.analyst") / "templates" / "report.html.j2").is_file()
