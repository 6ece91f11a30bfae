"""Freezing a closed period: the Delta version of every gold table recorded in ``gold_period_freezes``.

Delta 4.0 has no table tags, so the register is a table; time travel (``versionAsOf``) reads a
frozen version back (:func:`read_frozen`). The first freeze wins (:func:`plan_freeze`), so what
was published at a period's close stays the reference.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import functions as F

from readiness.domain.bases import AS_REPORTED
from readiness.domain.periods import parse_period
from readiness.lake import store
from readiness.lake.log import lake_versions
from readiness.lake.spark import get_spark
from readiness.lake.tables import FREEZES, GOLD_COMPLETENESS, GOLD_PREFIX
from readiness.orchestration.locks import period_lock
from readiness.settings import Settings


def iso_utc(moment: datetime | None) -> str | None:
    """An instant as ISO 8601 UTC (naive instants are UTC, as Spark returns them), or None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def gold_tables(versions: Mapping[str, int]) -> dict[str, int]:
    """The published tables (``gold_*``, not the freeze register itself) among ``table -> version``."""
    return {t: v for t, v in sorted(versions.items()) if t.startswith(GOLD_PREFIX) and t != FREEZES}


def plan_freeze(existing: Mapping[str, int], current: Mapping[str, int], refreeze: bool = False) -> dict[str, int] | None:
    """The ``table -> version`` to record for a period, or None to leave the register as it is.

    The first freeze wins: closing a period again keeps the versions recorded at its close, so
    what was published stays the reference. A gold table that did not exist at the first freeze
    is added. ``refreeze`` (a deliberate reprocess) records the current versions instead.
    """
    if refreeze or not existing:
        return dict(current) if current and dict(current) != dict(existing) else None
    added = {t: v for t, v in current.items() if t not in existing}
    return {**existing, **added} if added else None


FREEZE_COLUMNS = "period_id string, table_name string, version long, frozen_at timestamp, run_id string"


def frozen_versions(settings: Settings, period_id: str) -> dict[str, int]:
    """``table -> Delta version`` recorded for the period in ``gold_period_freezes`` (empty if not frozen)."""
    return {t: v for t, (v, _, _) in _freeze_rows(settings, period_id).items()}


def _freeze_rows(settings: Settings, period_id: str) -> dict[str, tuple[int, datetime, str]]:


    spark = get_spark(settings)
    if not store.exists(spark, settings, FREEZES):
        return {}
    rows = (store.read(spark, settings, FREEZES).where(F.col("period_id") == period_id)
            .select("table_name", "version", F.unix_micros("frozen_at").alias("frozen_us"), "run_id").collect())
    return {r["table_name"]: (int(r["version"]), datetime.fromtimestamp(r["frozen_us"] / 1e6, tz=timezone.utc),
                              r["run_id"]) for r in rows}


def read_frozen(settings: Settings, table: str, period_id: str):
    """The period's rows of a gold table as frozen at its close (the current rows if not frozen)."""
    version = frozen_versions(settings, period_id).get(table)
    return store.read(get_spark(settings), settings, table, version).where(F.col("period_id") == period_id)


def freeze_period(settings: Settings, period_id: str, run_id: str, refreeze: bool = False,
                  now: datetime | None = None) -> dict[str, Any]:
    """Record the current Delta version of every gold table for the period (see :func:`plan_freeze`).

    One row per table in ``gold_period_freezes`` (``period_id, table_name, version, frozen_at,
    run_id``), the partition ``period_id`` replaced as a whole. Delta 4.0 has no table tags, so the
    register is a table; time travel (``versionAsOf``) reads a frozen version back
    (:func:`read_frozen`). Keep ``delta.deletedFileRetentionDuration`` longer than the period
    between closes, or do not VACUUM the gold tables, so the frozen versions stay readable.
    """
    period_id = parse_period(period_id).id
    with period_lock(settings, period_id):
        existing_rows = _freeze_rows(settings, period_id)
        existing = {t: v for t, (v, _, _) in existing_rows.items()}
        current = gold_tables(lake_versions(settings))
        plan = plan_freeze(existing, current, refreeze)
        if plan is None:
            frozen_at = min((at for _, at, _ in existing_rows.values()), default=None)
            return {"period_id": period_id, "frozen": False, "versions": existing, "frozen_at": iso_utc(frozen_at)}
        moment = now or datetime.now(timezone.utc)
        rows = []
        for table, version in sorted(plan.items()):
            kept = existing_rows.get(table) if not refreeze and table in existing else None
            rows.append((period_id, table, int(version), kept[1] if kept else moment, kept[2] if kept else run_id))
        spark = get_spark(settings)
        store.overwrite_partition(spark.createDataFrame(rows, FREEZE_COLUMNS), settings, FREEZES, "period_id", period_id)
    return {"period_id": period_id, "frozen": True, "versions": dict(sorted(plan.items())), "frozen_at": iso_utc(moment)}


def missing_by_province(rows: Iterable[tuple[str, Iterable[str] | None]]) -> dict[str, list[str]]:
    """``province -> sorted missing unit codes`` from (province_code, missing_units) rows; empty lists dropped."""
    result: dict[str, list[str]] = {}
    for province, units in rows:
        if units:
            result.setdefault(province, []).extend(units)
    return {p: sorted(set(u)) for p, u in sorted(result.items())}


def missing_units(settings: Settings, period_id: str, version: int | None = None) -> dict[str, list[str]]:
    """Units still missing for the period, per province, from ``gold_reporting_completeness``.

    Read at ``version`` (the frozen one) when given. The units are those of the period's own
    provinces (basis ``as_reported`` when the table has bases).
    """
    spark = get_spark(settings)
    if not store.exists(spark, settings, GOLD_COMPLETENESS):
        return {}
    df = store.read(spark, settings, GOLD_COMPLETENESS, version).where(F.col("period_id") == period_id)
    if "basis" in df.columns:
        df = df.where(F.col("basis") == AS_REPORTED)
    return missing_by_province((r["province_code"], r["missing_units"])
                               for r in df.select("province_code", "missing_units").collect())
