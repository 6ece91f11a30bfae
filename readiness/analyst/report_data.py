"""What the analysts' report shows, read from the gold tables: :class:`ReportData` and :func:`gather`.

:func:`gather` reads one period's ranking, sub-index scores, completeness, target attainment and the
trend over the periods of the same report type from ``gold_readiness_index``,
``gold_reporting_completeness`` and ``gold_target_attainment`` (optionally as published at an earlier
time) and puts province names on them. Everything after it (:mod:`readiness.analyst.charts`, the page
in :mod:`readiness.analyst.report`) is pure and works on a :class:`ReportData` alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from readiness.analyst.catalog import LOCAL_TZ, AsOf, open_snapshot
from readiness.domain.bases import DEFAULT_BASIS, province_names_for
from readiness.domain.periods import REPORT_TYPES, parse_period
from readiness.domain.reference import indicator_by_code
from readiness.lake.tables import GOLD_ATTAINMENT, GOLD_COMPLETENESS, GOLD_INDEX
from readiness.settings import Settings

INDEX, COMPLETENESS, TARGETS = GOLD_INDEX, GOLD_COMPLETENESS, GOLD_ATTAINMENT


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

    def label(self, code: str) -> str:
        """A province's name, or its code if the name is not known."""
        return self.names.get(code, code)

    def trend_periods(self) -> list[str]:
        """The periods of the trend, oldest first."""
        return sorted({r["period_id"] for r in self.trend}, key=period_key)


def period_key(period_id: str) -> tuple:
    """Sort key of a period id: the end of its data window, then quarterly before six-monthly before yearly."""
    period = parse_period(period_id)
    return period.window()[1], REPORT_TYPES.index(period.report_type)


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
    periods = sorted({r["period_id"] for r in rows}, key=period_key)
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
                     and period_key(p) <= period_key(period_id)]
    trend = sorted(({k: r[k] for k in ("period_id", "province_code", "readiness_index", "rank")}
                    for r in rows if r["period_id"] in trend_periods),
                   key=lambda r: (period_key(r["period_id"]), r["province_code"]))
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
