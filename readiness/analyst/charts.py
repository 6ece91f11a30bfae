"""The report's charts: matplotlib figures of a :class:`~readiness.analyst.report_data.ReportData`,
returned as inline ``<svg>`` strings for the page.

Text stays text (``svg.fonttype: none``), so province names are searchable and copyable; element ids
are prefixed with the chart's id, so several charts share one page. matplotlib escapes the text it
writes, so the SVG strings are trusted markup the page inserts as is. One function per chart:
:func:`ranking_chart`, :func:`heatmap_chart` (sub-index scores), :func:`target_chart` (attainment;
None when there is nothing to draw), :func:`compliance_chart` and :func:`trend_chart` (small multiples).
"""
from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable

from readiness.analyst.report_data import ReportData

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


def ranking_chart(data: ReportData) -> str:
    """Horizontal bars of the readiness index, best first, coloured by the rank change; the national mean dashed."""
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
    """Heat map of the sub-index scores, provinces in rank order by components; grey: nothing reported."""
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
                      [f"{data.label(c)} ({met[c][0]}/{met[c][1]} met)" for c in province_codes])
        _label_cells(ax, matrix, lambda v: f"{v:.0%}", lambda v: "white" if v >= 1.6 or v <= 0.3 else "black", 6.5)
        _bare(ax)
        fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="actual against target (100% = met)")
        return _svg(fig, "chart-targets", f"Target attainment per province and indicator, {data.period_id}")


def compliance_chart(data: ReportData) -> str:
    """A matrix of expected, on-time, late and missing reports per province, shaded by share."""
    import matplotlib
    from matplotlib.patches import Rectangle

    rows = sorted(data.completeness, key=lambda r: (-(r["on_time"] or 0) / max(1, r["expected"] or 0),
                                                    data.label(r["province_code"])))
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
        ax.set_yticks(range(len(rows)), [data.label(r["province_code"]) for r in rows])
        _bare(ax)
        return _svg(fig, "chart-compliance", f"Reporting compliance per province, {data.period_id}")


def trend_chart(data: ReportData) -> str:
    """Small multiples: each province's index over the periods, the national median in grey."""
    import matplotlib

    periods = data.trend_periods()
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
            ax.set_title(data.label(code), fontsize=7.5, pad=2)
            ax.set_ylim(low - margin, high + 3 * margin)  # room for the value label
            ax.set_xlim(-0.4, max(0.4, len(periods) - 0.6))
            ax.grid(axis="y", color="#eeeeee", linewidth=0.6)
        for k, ax in enumerate(axes.flat[:len(provinces)]):
            if k + columns >= len(provinces):  # nothing drawn below it: label the periods
                ax.tick_params(labelbottom=True)
                ax.set_xticks(x, periods, rotation=45, ha="right")
        fig.subplots_adjust(hspace=0.55, wspace=0.12)
        return _svg(fig, "chart-trend", f"Readiness index per province across periods up to {data.period_id}")
