"""``readiness report``: one period's national picture as a self-contained HTML file.

The page loads nothing from the network (its Content-Security-Policy forbids it). Sections: the
national ranking, sub-index scores as a heat map, target attainment (or a clearly labelled "no targets
published for this period"), the compliance matrix (on time, late, missing) and each province's trend
across the periods of the same report type, as small multiples.

This module is the entry point: :func:`write_report` reads the gold tables
(:func:`~readiness.analyst.report_data.gather` into a :class:`ReportData`), renders the page and writes
the file. :func:`render_html` is pure: it draws the charts (:mod:`readiness.analyst.charts`, inline
SVG) and fills the Jinja2 template ``templates/report.html.j2`` with autoescaping on; only the charts,
which the project itself generates, are marked safe (and a test's probe script, if given).
"""
from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import jinja2

from readiness.analyst.catalog import LOCAL_TZ, AsOf
from readiness.analyst.charts import compliance_chart, heatmap_chart, ranking_chart, target_chart, trend_chart
from readiness.analyst.report_data import ReportData, ReportError, gather, names_for
from readiness.domain.bases import BASIS_LABELS, DEFAULT_BASIS
from readiness.domain.periods import parse_period
from readiness.settings import Settings

__all__ = ["NO_TARGETS", "ReportData", "ReportError", "gather", "names_for", "render_html", "report_path",
           "write_report"]

NO_TARGETS = "No targets published for this period"
TEMPLATE = "report.html.j2"


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("readiness.analyst", "templates"),
        autoescape=jinja2.select_autoescape(("html", "html.j2"), default=True),
        undefined=jinja2.StrictUndefined,  # a misspelt name in the template fails instead of printing nothing
        trim_blocks=True, lstrip_blocks=True,
    )


def _fmt(value: object, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _probe(probe_js: str | None) -> str | None:
    """A caller's script for the end of the body, checked to be script text only (the template inserts it
    as given: script text is not HTML and cannot be escaped)."""
    if not probe_js:
        return None
    if re.search(r"</script", probe_js, re.I):
        raise ValueError("probe_js must be script text only: it contains '</script'")
    return probe_js


def _no_targets_why(data: ReportData) -> str:
    return ("the gold_target_attainment table does not exist" if data.targets is None else
            f"gold_target_attainment holds no rows for {data.period_id}" if not data.targets else
            "gold_target_attainment's columns are not recognised")


def render_html(data: ReportData, probe_js: str | None = None) -> str:
    """The whole report page (pure: no Spark, no files).

    ``probe_js``: script text run at the end of the body, for tests that inspect the page as a browser
    drew it; None (the default) for a report, which then holds no script at all.
    """
    ranking, completeness = data.ranking, data.completeness
    mean = sum(r["readiness_index"] for r in ranking) / len(ranking) if ranking else math.nan
    expected = sum(r["expected"] or 0 for r in completeness)
    on_time = sum(r["on_time"] or 0 for r in completeness)
    late = sum(r["late"] or 0 for r in completeness)
    missing = sum(r["missing"] or 0 for r in completeness)
    period = parse_period(data.period_id)

    # The charts are SVG the project drew (matplotlib escapes the text in it): trusted markup, which the
    # template marks safe; everything else it is given is text and is escaped.
    charts = {"chart-ranking": ranking_chart(data), "chart-subindex": heatmap_chart(data),
              "chart-trend": trend_chart(data)}
    targets = target_chart(data) if data.targets else None
    if targets:
        charts["chart-targets"] = targets
    if completeness:
        charts["chart-compliance"] = compliance_chart(data)

    return _environment().get_template(TEMPLATE).render(
        period_id=data.period_id, report_type=period.report_type, due_date=period.due_date().isoformat(),
        methodology_id=data.methodology_id, methodology_version=data.methodology_version,
        basis_text=BASIS_LABELS.get(data.basis, data.basis),
        facts=[
            ("Provinces ranked", str(len(ranking))),
            ("National mean index", _fmt(mean, ".4f")),
            ("Reports on time", f"{on_time} / {expected} ({on_time / expected:.1%})" if expected else "–"),
            ("Late / missing", f"{late} / {missing}"),
        ],
        notes=data.notes,
        charts=charts,
        ranking_rows=[[r["rank"], r["province_name"], r["province_code"], _fmt(r["readiness_index"], ".4f"),
                       r["previous_rank"], r["rank_change"]] for r in ranking],
        indicator_rows=[[c, data.indicator_labels.get(c, "")]
                        for c in sorted({r["indicator_code"] for r in data.targets})] if targets else [],
        no_targets=NO_TARGETS, no_targets_why=_no_targets_why(data),
        completeness_rows=[[data.label(r["province_code"]), r["expected"], r["received"], r["on_time"], r["late"],
                            r["missing"], ", ".join(r.get("missing_units") or [])]
                           for r in sorted(completeness, key=lambda r: r["province_code"])],
        trend_periods=data.trend_periods(),
        source=data.source, generated_at=data.generated_at, local_tz=LOCAL_TZ,
        probe_js=_probe(probe_js),
    )


def report_path(out_dir: Path, data: ReportData) -> Path:
    suffix = "" if (data.methodology_id, data.basis) == ("ict-index", DEFAULT_BASIS) else \
        f"-{data.methodology_id}-{data.basis}"
    return Path(out_dir) / f"readiness-report-{data.period_id}{suffix}.html"


def write_report(settings: Settings, period_id: str | None = None, out_dir: str | Path | None = None,
                 methodology_id: str = "ict-index", basis: str = DEFAULT_BASIS, as_of: AsOf | None = None,
                 spark=None, probe_js: str | None = None) -> Path:
    """Gather, render and write the report; return the file's path. ``probe_js``: see :func:`render_html`."""
    data = gather(settings, period_id, methodology_id, basis, as_of, spark)
    out = Path(out_dir) if out_dir else Path(settings.var_dir) / "reports"
    out.mkdir(parents=True, exist_ok=True)
    path = report_path(out, data)
    path.write_text(render_html(data, probe_js=probe_js), encoding="utf-8")
    return path
