"""Terminal views of the gold tables for analysts and for ``make run``."""
from __future__ import annotations

from pyspark.sql import functions as F

from readiness.domain.bases import DEFAULT_BASIS
from readiness.domain.periods import REPORT_TYPES, parse_period
from readiness.lake import store
from readiness.lake.spark import get_spark
from readiness.lake.tables import GOLD_COMPLETENESS, GOLD_INDEX, QUARANTINE
from readiness.settings import Settings
from readiness.terminal import Column, format_rows


def latest_period(settings: Settings) -> str:
    """The published period whose data window ends last (quarterly first on a tie)."""
    spark = get_spark(settings)
    periods = [r["period_id"] for r in store.read(spark, settings, GOLD_INDEX).select("period_id").distinct().collect()]
    if not periods:
        raise LookupError("the gold tables hold no period yet: run the pipeline first")
    return max(periods, key=lambda p: (parse_period(p).window()[1], -REPORT_TYPES.index(parse_period(p).report_type)))


def format_ranking(period_id: str, rows: list[dict], methodology_id: str) -> str:
    components = sorted({k for r in rows for k in (r["components"] or {})})
    columns = [Column("rank", 4, True), Column("code", 4), Column("province", 22), Column("index", 7, True),
               *(Column(c, 14, True) for c in components), Column("change", 6, True)]
    cells = []
    for r in rows:
        change = r.get("rank_change")
        cells.append((str(r["rank"]), r["province_code"], r["province_name"] or "", f"{r['readiness_index']:.4f}",
                      *(f"{(r['components'] or {}).get(c, float('nan')):.4f}" for c in components),
                      "new" if change is None else ("=" if change == 0 else f"{change:+d}")))
    title = f"National readiness ranking, {period_id}, {methodology_id} ({len(rows)} provinces)"
    return "\n".join([title, *format_rows(columns, cells)])


def print_ranking(period_id: str, rows: list[dict], methodology_id: str) -> None:
    print(format_ranking(period_id, rows, methodology_id))


def compliance_rows(settings: Settings, period_id: str, basis: str = DEFAULT_BASIS) -> list[dict]:
    spark = get_spark(settings)
    rows = (store.read(spark, settings, GOLD_COMPLETENESS)
            .where((F.col("period_id") == period_id) & (F.col("basis") == basis))
            .orderBy("province_code").collect())
    return [r.asDict() for r in rows]


COMPLIANCE_COLUMNS = (Column("code", 4), Column("province", 22), Column("expected", 8, True),
                      Column("received", 8, True), Column("on time", 7, True), Column("late", 5, True),
                      Column("missing", 7, True), Column("on-time %", 9, True), Column("missing units"))
COUNTS = ("expected", "received", "on_time", "late", "missing")


def format_compliance(period_id: str, rows: list[dict], names: dict[str, str]) -> str:
    cells = []
    for r in rows:
        missing = ", ".join(r["missing_units"][:4]) + (" ..." if len(r["missing_units"]) > 4 else "")
        cells.append((r["province_code"], names.get(r["province_code"], ""), *(str(r[k]) for k in COUNTS),
                      f"{r['on_time_rate']:.2f}", missing))
    total = {k: sum(r[k] for r in rows) for k in COUNTS}
    cells.append(("", "national", *(str(total[k]) for k in COUNTS), "", ""))
    return "\n".join([f"Reporting compliance, {period_id} ({len(rows)} provinces)",
                      *format_rows(COMPLIANCE_COLUMNS, cells)])


def open_quarantine(settings: Settings, province: str | None = None, period_id: str | None = None,
                    include_closed: bool = False) -> list[dict]:
    """Quarantined reports a province still has to correct (status ``open``), newest period first."""
    spark = get_spark(settings)
    if not store.exists(spark, settings, QUARANTINE):
        return []
    rows = store.read(spark, settings, QUARANTINE)
    if not include_closed:
        rows = rows.where(F.col("status") == "open")
    if province:
        rows = rows.where(F.col("province_code") == province)
    if period_id:
        rows = rows.where(F.col("period_id") == period_id)
    ordered = rows.orderBy(F.col("period_id").desc(), "province_code", "unit_code", "event_id", "rule")
    return [r.asDict() for r in ordered.collect()]


def format_quarantine(rows: list[dict]) -> str:
    if not rows:
        return "No quarantined reports to correct."
    lines = []
    by_province: dict[str, list[dict]] = {}
    for r in rows:
        by_province.setdefault(r["province_code"] or "?", []).append(r)
    for province, items in sorted(by_province.items()):
        events = len({i["event_id"] for i in items if i["status"] == "open"})
        held = len({i["event_id"] for i in items if i["status"] == "held"})
        waiting = f", {held} accepted report(s) held back until the share of quarantined ones falls" if held else ""
        lines.append(f"Province {province}: {events} report(s) to correct{waiting}")
        for i in items:
            what = i["indicator_code"] or "(whole report)"
            lines.append(f"  {i['period_id']}  {i['unit_code']:<10} rev {i.get('revision')}  {what:<36} "
                         f"{i['rule']}")
            lines.append(f"      observed {i['observed_value']}; expected {i['expected'] or 'a value'}"
                         f"  [{i['severity']}, {i['status']}, event {i['event_id']}]")
    lines.append("Correct a report by sending it again with a higher revision: readiness publish FILE")
    return "\n".join(lines)
