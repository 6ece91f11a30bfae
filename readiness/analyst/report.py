"""``readiness report``: one period's national picture as a self-contained HTML file.

Charts are drawn with matplotlib and inlined as SVG (text stays text, so names are searchable and
copyable); the page loads nothing from the network (its Content-Security-Policy forbids it). Sections:
the national ranking, sub-index scores as a heat map, target attainment (or a clearly labelled "no
targets published for this period"), the compliance matrix (on time, late, missing) and each
province's trend across the periods of the same report type, as small multiples.

:func:`gather` reads the gold tables (optionally as published at an earlier time) into a
:class:`ReportData`; :func:`render_html` is pure and turns it into the page.
"""
from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from readiness.domain.bases import BASIS_LABELS, DEFAULT_BASIS, province_names_for
from readiness.analyst.catalog import LOCAL_TZ, AsOf, open_snapshot
from readiness.domain.periods import parse_period
from readiness.domain.reference import indicator_by_code, province_names, provinces_in_force
from readiness.lake.tables import GOLD_ATTAINMENT, GOLD_COMPLETENESS, GOLD_INDEX
from readiness.settings import Settings

INDEX, COMPLETENESS, TARGETS = GOLD_INDEX, GOLD_COMPLETENESS, GOLD_ATTAINMENT
TYPE_ORDER = {"quarterly": 0, "six_monthly": 1, "yearly": 2}
NO_TARGETS = "No targets published for this period"


class ReportError(LookupError):
    """Nothing to report: no index table, or no ranking for the period asked for."""


@dataclass
class ReportData:
    period_id: str
    basis: str
    methodology_id: str
    methodology_version: str
    ranking: list[dict]  # province_code, province_name, readiness_index, rank, previous_rank, rank_change, components
    components: list[str]  # component ids in the methodology's order
    completeness: list[dict]  # province_code, expected, received, on_time, late, missing, ...
    targets: list[dict] | None  # None: no gold_target_attainment table
    trend: list[dict]  # period_id, province_code, readiness_index, rank (periods of the same report type)
    names: dict[str, str]  # province code -> Vietnamese name
    indicator_labels: dict[str, str] = field(default_factory=dict)  # code -> "name_vi (unit)"
    source: str = ""  # which tables and versions were read
    generated_at: str = ""
    notes: list[str] = field(default_factory=list)


# --- reading the gold tables ------------------------------------------------------------------------

def _period_key(period_id: str) -> tuple:
    period = parse_period(period_id)
    return period.window()[1], TYPE_ORDER[period.report_type]


def names_for(basis: str, period_id: str) -> dict[str, str]:
    """Province names for a basis: the 34 of 2025 when restated, those in force in the period otherwise."""
    return province_names_for(basis, parse_period(period_id).window()[1])


def _component_order(methodology_id: str, seen: set[str]) -> list[str]:
    try:
        from readiness.domain.scoring import load_methodology

        ordered = [c.id for c in load_methodology(methodology_id).components]
    except Exception:  # a methodology no longer shipped: keep the table's own ids
        ordered = []
    return [c for c in ordered if c in seen] + sorted(seen - set(ordered))


def gather(settings: Settings, period_id: str | None = None, methodology_id: str = "ict-index",
           basis: str = DEFAULT_BASIS, as_of: AsOf | None = None, spark=None) -> ReportData:
    """Read what the report shows from the gold tables (as published at ``as_of`` if given)."""
    from pyspark.sql import functions as F

    from readiness.lake.spark import get_spark

    spark = spark or get_spark(settings)
    snapshot = open_snapshot(spark, settings, as_of, database=False)
    if INDEX not in snapshot.tables:
        raise ReportError(f"no {INDEX} table" + (f" ({snapshot.left_out[INDEX]})" if INDEX in snapshot.left_out else
                                                 f" under {settings.lake_dir}: run the pipeline first"))
    index = (spark.table(INDEX).where((F.col("basis") == basis) & (F.col("methodology_id") == methodology_id))
             .select("period_id", "methodology_version", "province_code", "province_name", "components",
                     "readiness_index", "rank", "previous_rank", "rank_change").collect())
    rows = [r.asDict(recursive=True) for r in index]
    periods = sorted({r["period_id"] for r in rows}, key=_period_key)
    if not periods:
        raise ReportError(f"{INDEX} holds no ranking for methodology {methodology_id!r}, basis {basis!r}")
    period_id = period_id or periods[-1]
    if period_id not in periods:
        raise ReportError(f"no published ranking for {period_id} ({methodology_id}, {basis}); "
                          f"published: {', '.join(periods)}")
    report_type = parse_period(period_id).report_type
    ranking = sorted((r for r in rows if r["period_id"] == period_id), key=lambda r: (r["rank"], r["province_code"]))
    names = names_for(basis, period_id)
    for r in ranking:
        r["province_name"] = names.get(r["province_code"]) or r["province_name"] or r["province_code"]
        names.setdefault(r["province_code"], r["province_name"])
    trend_periods = [p for p in periods if parse_period(p).report_type == report_type
                     and _period_key(p) <= _period_key(period_id)]
    trend = sorted(({k: r[k] for k in ("period_id", "province_code", "readiness_index", "rank")}
                    for r in rows if r["period_id"] in trend_periods),
                   key=lambda r: (_period_key(r["period_id"]), r["province_code"]))
    notes = [f"{t} left out: {why}" for t, why in snapshot.left_out.items()]

    completeness: list[dict] = []
    if COMPLETENESS in snapshot.tables:
        frame = spark.table(COMPLETENESS).where(F.col("period_id") == period_id)
        if "basis" in frame.columns:
            frame = frame.where(F.col("basis") == basis)
        completeness = [r.asDict(recursive=True) for r in frame.collect()]
    else:
        notes.append(f"no {COMPLETENESS} table: the compliance matrix is empty")

    targets: list[dict] | None = None
    if TARGETS in snapshot.tables:
        frame = spark.table(TARGETS)
        if "period_id" in frame.columns:
            frame = frame.where(F.col("period_id") == period_id)
        if "basis" in frame.columns:
            frame = frame.where(F.col("basis") == basis)
        targets = [r.asDict(recursive=True) for r in frame.collect()]

    catalogue = indicator_by_code()
    return ReportData(
        period_id=period_id, basis=basis, methodology_id=methodology_id,
        methodology_version=str(ranking[0]["methodology_version"]) if ranking else "",
        ranking=ranking,
        components=_component_order(methodology_id, {k for r in ranking for k in (r["components"] or {})}),
        completeness=completeness, targets=targets, trend=trend, names=names,
        indicator_labels={c: f"{i.name_vi} ({i.unit})" for c, i in catalogue.items()},
        source=snapshot.describe(),
        generated_at=datetime.now(ZoneInfo(LOCAL_TZ)).isoformat(timespec="seconds"),
        notes=notes,
    )


# --- charts -----------------------------------------------------------------------------------------

_RC = {
    "svg.fonttype": "none",  # text as <text>: Vietnamese names stay text in the page
    "font.family": ["DejaVu Sans"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _svg(fig, chart_id: str, label: str) -> str:
    """The figure as an inline <svg>: ids prefixed (several charts share one page), no XML prologue."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": chart_id}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", pad_inches=0.1)
    text = buffer.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->\s*", "", text, flags=re.S)
    text = re.sub(r'\bid="', f'id="{chart_id}-', text)
    text = re.sub(r'\bhref="#', f'href="#{chart_id}-', text)  # href and xlink:href (markers)
    text = text.replace("url(#", f"url(#{chart_id}-")
    return text.replace("<svg ", f'<svg role="img" aria-label="{html.escape(label)}" ', 1)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _label(data: ReportData, code: str) -> str:
    return data.names.get(code, code)


def ranking_chart(data: ReportData) -> str:
    import matplotlib

    rows = data.ranking
    with matplotlib.rc_context(_RC):
        fig = _figure(10, 0.27 * len(rows) + 1.0)
        ax = fig.add_subplot()
        colours = ["#2e7d32" if (r["rank_change"] or 0) > 0 else "#c62828" if (r["rank_change"] or 0) < 0
                   else "#1565c0" for r in rows]
        y = list(range(len(rows)))
        ax.barh(y, [r["readiness_index"] for r in rows], color=colours, height=0.7)
        ax.set_yticks(y, [f"{r['rank']}. {r['province_name']}" for r in rows])
        top = max([r["readiness_index"] for r in rows] + [1e-9])
        for yi, r in zip(y, rows):
            change = r["rank_change"]
            arrow = "" if change is None else (f"  ▲{change}" if change > 0 else f"  ▼{-change}" if change < 0 else "  =")
            ax.text(r["readiness_index"] + top * 0.005, yi, f"{r['readiness_index']:.4f}{arrow}", va="center", fontsize=7.5)
        mean = sum(r["readiness_index"] for r in rows) / len(rows)
        ax.axvline(mean, color="#555", linestyle="--", linewidth=0.8)
        ax.text(mean, -0.9, f" national mean {mean:.4f}", fontsize=7.5, color="#555")
        ax.set_xlim(0, top * 1.15)
        ax.set_ylim(len(rows) - 0.4, -1.2)
        ax.set_xlabel(f"Readiness index ({data.methodology_id} v{data.methodology_version}, 0 to 1)")
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color="#2e7d32", label="moved up"), Patch(color="#c62828", label="moved down"),
                           Patch(color="#1565c0", label="unchanged or first ranking")],
                  loc="lower right", fontsize=7.5, frameon=False)
        return _svg(fig, "chart-ranking", f"National ranking, {data.period_id}")


def _heat_text_colour(value: float, vmin: float, vmax: float) -> str:
    return "white" if (value - vmin) / ((vmax - vmin) or 1) > 0.6 else "black"


def _label_cells(ax, matrix, fmt: Callable[[float], str], colour: Callable[[float], str], fontsize: float) -> None:
    """Write each heat-map cell's value in it; an empty (NaN) cell shows a dash in black."""
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            value = matrix[i, j]
            empty = math.isnan(value)
            ax.text(j, i, "–" if empty else fmt(value), ha="center", va="center", fontsize=fontsize,
                    color="black" if empty else colour(value))


def _bare(ax) -> None:
    """No tick marks and no frame: the matrix charts' cells carry the grid."""
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def heatmap_chart(data: ReportData) -> str:
    import matplotlib
    import numpy as np

    rows, comps = data.ranking, data.components
    matrix = np.array([[(r["components"] or {}).get(c, np.nan) for c in comps] for r in rows], dtype=float)
    with matplotlib.rc_context(_RC):
        fig = _figure(2.8 + 1.5 * max(1, len(comps)), 0.27 * len(rows) + 1.4)
        ax = fig.add_subplot()
        cmap = matplotlib.colormaps["YlGnBu"].copy()
        cmap.set_bad("#e0e0e0")
        image = ax.imshow(np.ma.masked_invalid(matrix), aspect="auto", cmap=cmap, vmin=0, vmax=1)
        ax.set_xticks(range(len(comps)), [c.replace("_", " ") for c in comps])
        ax.xaxis.tick_top()
        ax.set_yticks(range(len(rows)), [f"{r['rank']}. {r['province_name']}" for r in rows])
        _label_cells(ax, matrix, lambda v: f"{v:.2f}", lambda v: _heat_text_colour(v, 0, 1), 7.5)
        _bare(ax)
        fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="sub-index score (0 to 1)")
        return _svg(fig, "chart-subindex", f"Sub-index scores per province, {data.period_id}")


def target_chart(data: ReportData) -> str | None:
    """Heat map of attainment ratios, provinces by indicators; None if the rows are not usable."""
    import matplotlib
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm

    rows = data.targets or []
    if not rows or not {"province_code", "indicator_code", "attainment_ratio"} <= set(rows[0]):
        return None
    order = {r["province_code"]: i for i, r in enumerate(data.ranking)}
    province_codes = sorted({r["province_code"] for r in rows}, key=lambda c: (order.get(c, len(order)), c))
    indicators = sorted({r["indicator_code"] for r in rows})
    matrix = np.full((len(province_codes), len(indicators)), np.nan)
    met: dict[str, list[int]] = {c: [0, 0] for c in province_codes}
    for r in rows:
        i, j = province_codes.index(r["province_code"]), indicators.index(r["indicator_code"])
        if r["attainment_ratio"] is not None:
            matrix[i, j] = r["attainment_ratio"]
        met[r["province_code"]][1] += 1
        met[r["province_code"]][0] += 1 if r.get("on_track") or r.get("status") == "on_track" else 0
    with matplotlib.rc_context(_RC):
        fig = _figure(3.2 + 0.75 * len(indicators), 0.27 * len(province_codes) + 2.2)
        ax = fig.add_subplot()
        cmap = matplotlib.colormaps["RdYlGn"].copy()
        cmap.set_bad("#e0e0e0")
        image = ax.imshow(np.ma.masked_invalid(np.clip(matrix, 0, 2)), aspect="auto", cmap=cmap,
                          norm=TwoSlopeNorm(vcenter=1.0, vmin=0.0, vmax=2.0))
        ax.set_xticks(range(len(indicators)), indicators, rotation=40, ha="left", fontsize=7.5)
        ax.xaxis.tick_top()
        ax.set_yticks(range(len(province_codes)),
                      [f"{_label(data, c)} ({met[c][0]}/{met[c][1]} met)" for c in province_codes])
        _label_cells(ax, matrix, lambda v: f"{v:.0%}", lambda v: "white" if v >= 1.6 or v <= 0.3 else "black", 6.5)
        _bare(ax)
        fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="actual against target (100% = met)")
        return _svg(fig, "chart-targets", f"Target attainment per province and indicator, {data.period_id}")


def compliance_chart(data: ReportData) -> str:
    """A matrix of expected, on-time, late and missing reports per province, shaded by share."""
    import matplotlib
    from matplotlib.patches import Rectangle

    rows = sorted(data.completeness, key=lambda r: (-(r["on_time"] or 0) / max(1, r["expected"] or 0),
                                                    _label(data, r["province_code"])))
    columns = [("expected", None), ("on_time", "Greens"), ("late", "Oranges"), ("missing", "Reds")]
    with matplotlib.rc_context(_RC):
        fig = _figure(9, 0.3 * max(1, len(rows)) + 1.2)
        ax = fig.add_subplot()
        for i, r in enumerate(rows):
            expected = r["expected"] or 0
            for j, (column, cmap_name) in enumerate(columns):
                count = r[column] or 0
                share = count / expected if expected else 0.0
                colour = "#eeeeee" if cmap_name is None else matplotlib.colormaps[cmap_name](0.12 + 0.8 * share)
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=colour, edgecolor="white", linewidth=1))
                text = f"{count}" if cmap_name is None else f"{count} ({share:.0%})"
                ax.text(j, i, text, ha="center", va="center", fontsize=8.5,
                        color="white" if cmap_name and share > 0.6 else "black")
        ax.set_xlim(-0.5, len(columns) - 0.5)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xticks(range(len(columns)), ["expected", "on time", "late", "missing"])
        ax.xaxis.tick_top()
        ax.set_yticks(range(len(rows)), [_label(data, r["province_code"]) for r in rows])
        _bare(ax)
        return _svg(fig, "chart-compliance", f"Reporting compliance per province, {data.period_id}")


def trend_chart(data: ReportData) -> str:
    """Small multiples: each province's index over the periods, the national median in grey."""
    import matplotlib

    periods = sorted({r["period_id"] for r in data.trend}, key=_period_key)
    by_province: dict[str, dict[str, float]] = {}
    for r in data.trend:
        by_province.setdefault(r["province_code"], {})[r["period_id"]] = r["readiness_index"]
    medians = []
    for p in periods:
        values = sorted(v[p] for v in by_province.values() if p in v)
        medians.append((values[(len(values) - 1) // 2] + values[len(values) // 2]) / 2 if values else math.nan)
    provinces = [r["province_code"] for r in data.ranking] + sorted(set(by_province) - {r["province_code"] for r in data.ranking})
    all_values = [v for d in by_province.values() for v in d.values()] or [0.0, 1.0]
    low, high = min(all_values), max(all_values)
    margin = max(0.02, (high - low) * 0.1)
    columns = 6
    nrows = math.ceil(len(provinces) / columns)
    with matplotlib.rc_context({**_RC, "font.size": 7}):
        fig = _figure(12, 1.45 * nrows + 0.4)
        axes = fig.subplots(nrows, columns, sharex=True, sharey=True, squeeze=False)
        x = list(range(len(periods)))
        for k, ax in enumerate(axes.flat):
            if k >= len(provinces):
                ax.set_visible(False)
                continue
            code = provinces[k]
            values = [by_province.get(code, {}).get(p, math.nan) for p in periods]
            ax.plot(x, medians, color="#9e9e9e", linewidth=1, linestyle="--")
            ax.plot(x, values, color="#1565c0", linewidth=1.6, marker="o", markersize=3)
            last = values[-1]
            if not math.isnan(last):
                ax.plot([x[-1]], [last], marker="o", markersize=5, color="#e65100")
                ax.annotate(f"{last:.3f}", (x[-1], last), xytext=(-4, 5), textcoords="offset points", fontsize=6.5,
                            ha="right", va="bottom", color="#e65100")
            ax.set_title(_label(data, code), fontsize=7.5, pad=2)
            ax.set_ylim(low - margin, high + 3 * margin)  # room for the value label
            ax.set_xlim(-0.4, max(0.4, len(periods) - 0.6))
            ax.grid(axis="y", color="#eeeeee", linewidth=0.6)
        for k, ax in enumerate(axes.flat[:len(provinces)]):
            if k + columns >= len(provinces):  # nothing drawn below it: label the periods
                ax.tick_params(labelbottom=True)
                ax.set_xticks(x, periods, rotation=45, ha="right")
        fig.subplots_adjust(hspace=0.55, wspace=0.12)
        return _svg(fig, "chart-trend", f"Readiness index per province across periods up to {data.period_id}")


# --- the page ---------------------------------------------------------------------------------------

CSS = """
body { font-family: 'DejaVu Sans', 'Liberation Sans', Arial, sans-serif; margin: 0; color: #212121; background: #fff; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 6px; border-bottom: 2px solid #1565c0; }
.subtitle { color: #555; margin: 0 0 16px; }
.facts { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; margin: 16px 0; }
.fact { background: #f5f7fb; border-radius: 6px; padding: 10px 12px; } .fact b { display: block; font-size: 20px; }
figure.chart { margin: 12px 0; } figure.chart svg { max-width: 100%; height: auto; display: block; }
figcaption { color: #555; font-size: 13px; margin-top: 4px; }
.empty { background: #fff8e1; border: 1px solid #ffca28; border-radius: 6px; padding: 18px; font-size: 18px; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; } th, td { padding: 3px 8px; border-bottom: 1px solid #e0e0e0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
details { margin: 6px 0 0; } summary { cursor: pointer; color: #1565c0; }
.provenance { color: #616161; font-size: 12px; margin-top: 40px; }
"""

# Marks each chart with what the browser actually drew (size, elements with a non-empty box), so a
# headless browser's DOM dump can tell a drawn chart from an empty one.
RENDER_CHECK_JS = """
(function () {
  var drawnTags = ['path', 'rect', 'line', 'polyline', 'polygon', 'circle', 'ellipse', 'text', 'use', 'image'];
  document.querySelectorAll('figure.chart').forEach(function (figure) {
    var svg = figure.querySelector('svg');
    if (!svg) { figure.setAttribute('data-drawn-elements', '0'); return; }
    var box = svg.getBoundingClientRect();
    var drawn = 0;
    svg.querySelectorAll(drawnTags.join(',')).forEach(function (el) {
      try { var b = el.getBBox(); if (b.width > 0 || b.height > 0) { drawn += 1; } } catch (e) {}
    });
    figure.setAttribute('data-drawn-elements', String(drawn));
    figure.setAttribute('data-rendered-box', [Math.round(box.left + window.scrollX), Math.round(box.top + window.scrollY),
                                              Math.round(box.width), Math.round(box.height)].join(','));
  });
  document.body.setAttribute('data-document-height', String(document.documentElement.scrollHeight));
})();
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[object]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>"
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: object, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _figure_html(chart_id: str, svg: str, caption: str) -> str:
    return (f'<figure class="chart" id="{chart_id}" data-chart="{chart_id}">{svg}'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def render_html(data: ReportData) -> str:
    """The whole report page (pure: no Spark, no files)."""
    r0 = data.ranking
    mean = sum(r["readiness_index"] for r in r0) / len(r0) if r0 else math.nan
    expected = sum(r["expected"] or 0 for r in data.completeness)
    on_time = sum(r["on_time"] or 0 for r in data.completeness)
    late = sum(r["late"] or 0 for r in data.completeness)
    missing = sum(r["missing"] or 0 for r in data.completeness)
    period = parse_period(data.period_id)
    basis_text = BASIS_LABELS.get(data.basis, data.basis)
    facts = [
        ("Provinces ranked", str(len(r0))),
        ("National mean index", _fmt(mean, ".4f")),
        ("Reports on time", f"{on_time} / {expected} ({on_time / expected:.1%})" if expected else "–"),
        ("Late / missing", f"{late} / {missing}"),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Nothing from the network: the page is complete by itself.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>ICT readiness report {_e(data.period_id)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>National ICT-readiness report, {_e(data.period_id)}</h1>",
        f'<p class="subtitle">Báo cáo mức độ sẵn sàng ứng dụng công nghệ thông tin · {_e(period.report_type)} period, '
        f"due {period.due_date().isoformat()} (Asia/Ho_Chi_Minh) · methodology {_e(data.methodology_id)} "
        f"v{_e(data.methodology_version)} · {_e(basis_text)}</p>",
        '<div class="facts">' + "".join(f'<div class="fact">{_e(k)}<b>{_e(v)}</b></div>' for k, v in facts) + "</div>",
    ]
    for note in data.notes:
        parts.append(f'<p class="note">{_e(note)}</p>')

    parts.append('<section id="ranking"><h2>National ranking</h2>')
    parts.append(_figure_html("chart-ranking", ranking_chart(data),
                              "Readiness index of every province, best first; colour: rank change since the previous period."))
    parts.append("<details><summary>Ranking table</summary>" + _table(
        ["rank", "province", "code", "index", "previous rank", "change"],
        [[r["rank"], r["province_name"], r["province_code"], _fmt(r["readiness_index"], ".4f"), r["previous_rank"],
          r["rank_change"]] for r in r0], {0, 3, 4, 5}) + "</details></section>")

    parts.append('<section id="subindexes"><h2>Sub-index scores</h2>')
    parts.append(_figure_html("chart-subindex", heatmap_chart(data),
                              "Score of each sub-index (0 to 1) per province, in rank order; grey: nothing reported."))
    parts.append("</section>")

    parts.append('<section id="targets"><h2>Target attainment</h2>')
    chart = target_chart(data) if data.targets else None
    if chart:
        parts.append(_figure_html("chart-targets", chart,
                                  "Actual value against each province's plan target (100% = met; for at-most targets, "
                                  "target over actual). Grey: no value reported."))
        labels = sorted({r["indicator_code"] for r in data.targets})
        parts.append("<details><summary>Indicators</summary>" + _table(
            ["code", "indicator"], [[c, data.indicator_labels.get(c, "")] for c in labels]) + "</details>")
    else:
        why = ("the gold_target_attainment table does not exist" if data.targets is None else
               f"gold_target_attainment holds no rows for {data.period_id}" if not data.targets else
               "gold_target_attainment's columns are not recognised")
        parts.append(f'<p class="empty" id="no-targets"><strong>{NO_TARGETS}.</strong> '
                     f'<span class="why">({_e(why)})</span></p>')
    parts.append("</section>")

    parts.append('<section id="compliance"><h2>Reporting compliance</h2>')
    if data.completeness:
        parts.append(_figure_html("chart-compliance", compliance_chart(data),
                                  "Expected reports and how many came on time, late or not at all (share of expected); "
                                  "on time = at or before the end of the due date in Asia/Ho_Chi_Minh."))
        parts.append("<details><summary>Missing units</summary>" + _table(
            ["province", "expected", "received", "on time", "late", "missing", "missing units"],
            [[_label(data, r["province_code"]), r["expected"], r["received"], r["on_time"], r["late"], r["missing"],
              ", ".join(r.get("missing_units") or [])] for r in sorted(data.completeness, key=lambda r: r["province_code"])],
            {1, 2, 3, 4, 5}) + "</details>")
    else:
        parts.append('<p class="empty">No completeness published for this period.</p>')
    parts.append("</section>")

    trend_periods = sorted({r["period_id"] for r in data.trend}, key=_period_key)
    parts.append('<section id="trend"><h2>Trend by province</h2>')
    parts.append(_figure_html("chart-trend", trend_chart(data),
                              f"Readiness index per {period.report_type} period ({', '.join(trend_periods)}); "
                              "grey dashed: national median; orange: this period."))
    parts.append("</section>")

    parts.append(f'<p class="provenance">Source: {_e(data.source)}. Generated {_e(data.generated_at)} ({LOCAL_TZ}). '
                 "Province names as in the official list (Vietnamese, NFC).</p>")
    parts.append(f"</main><script>{RENDER_CHECK_JS}</script></body></html>")
    return "\n".join(parts)


def report_path(out_dir: Path, data: ReportData) -> Path:
    suffix = "" if (data.methodology_id, data.basis) == ("ict-index", DEFAULT_BASIS) else \
        f"-{data.methodology_id}-{data.basis}"
    return Path(out_dir) / f"readiness-report-{data.period_id}{suffix}.html"


def write_report(settings: Settings, period_id: str | None = None, out_dir: str | Path | None = None,
                 methodology_id: str = "ict-index", basis: str = DEFAULT_BASIS, as_of: AsOf | None = None,
                 spark=None) -> Path:
    """Gather, render and write the report; return the file's path."""
    data = gather(settings, period_id, methodology_id, basis, as_of, spark)
    out = Path(out_dir) if out_dir else Path(settings.var_dir) / "reports"
    out.mkdir(parents=True, exist_ok=True)
    path = report_path(out, data)
    path.write_text(render_html(data), encoding="utf-8")
    return path
