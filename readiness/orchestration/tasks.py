"""The bodies of the DAGs' tasks: each runs a pipeline stage under its lock and says what it wrote.

Each returns a JSON-able dict (the task's XCom) including ``delta_versions``: the tables whose
Delta version changed during the call, with their new version. This is the one module of
``readiness.orchestration`` that imports Spark; a DAG file imports it inside the task callable,
which runs on the worker, never at parse time. The validate and aggregate stages are imported
inside their task bodies: they load Great Expectations (about 9 s of imports), which an ingest
task, run every few minutes, does not need.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pyspark.sql import functions as F

from readiness.domain.periods import parse_period
from readiness.domain.scoring import resolve_methodology, shipped_methodologies
from readiness.lake import store
from readiness.lake.log import tracking_versions
from readiness.lake.spark import get_spark
from readiness.lake.tables import BRONZE_REPORTS, DEAD_LETTERS, GOLD_COMPLETENESS, GOLD_INDEX
from readiness.orchestration.alerts import alert_held_back
from readiness.orchestration.calendar import changed_periods
from readiness.orchestration.freezes import freeze_period, iso_utc, missing_units
from readiness.orchestration.locks import lock, period_lock
from readiness.orchestration.stream_health import health_path, is_live, read_health
from readiness.pipeline.ingest import COUNTS, ingest_reports
from readiness.settings import Settings


def last_event_at(settings: Settings) -> str | None:
    """When the newest event in bronze (report or dead letter) reached Kafka, ISO UTC, or None."""
    spark = get_spark(settings)
    newest = []
    for name in (BRONZE_REPORTS, DEAD_LETTERS):
        if store.exists(spark, settings, name):
            value = store.read(spark, settings, name).agg(F.max(F.unix_micros("kafka_timestamp"))).collect()[0][0]
            if value is not None:
                newest.append(int(value))
    if not newest:
        return None
    return iso_utc(datetime.fromtimestamp(max(newest) / 1e6, tz=timezone.utc))


def streaming_service(settings: Settings) -> dict[str, Any] | None:
    """The health document of a streaming service running now on this deployment, or None."""
    document = read_health(health_path(settings))
    return document if is_live(document, datetime.now(timezone.utc), settings.stream_max_silence_s) else None


def run_ingest(settings: Settings) -> dict[str, Any]:
    """Ingest the events not yet in bronze (one ingest at a time) and say which periods got rows;
    nothing (``skipped``) while the streaming service runs, since it ingests them.

    Returns the job's counts plus ``periods`` (periods with new bronze rows, from the Delta log),
    ``bronze_version_before``/``bronze_version``, ``delta_versions`` and ``last_event_at``.
    """
    stream = streaming_service(settings)
    if stream is not None:  # it holds the ingest lock for its life: waiting would only block this task
        return {**dict.fromkeys(COUNTS, 0), "periods": [], "delta_versions": {}, "last_event_at": last_event_at(settings),
                "skipped": f"the streaming service (pid {stream.get('pid')}) ingests the topics"}
    with lock(settings, "ingest"), tracking_versions(settings) as change:
        counts = dict(ingest_reports(settings))
    bronze_before, bronze_after = change.before.get(BRONZE_REPORTS), change.after.get(BRONZE_REPORTS)
    periods = [] if bronze_after == bronze_before else changed_periods(settings, bronze_before, bronze_after)
    counts.update(
        periods=periods,
        bronze_version_before=bronze_before,
        bronze_version=bronze_after,
        delta_versions=change.written,
        last_event_at=last_event_at(settings),
    )
    return counts


def validate(settings: Settings, period_id: str) -> dict[str, Any]:
    """``validate_period`` under the period's lock; its counts plus ``period_id``, ``delta_versions``
    and ``held_back_alert`` (what was sent when provinces were held back, else None)."""
    from readiness.pipeline.validate import validate_period

    with period_lock(settings, period_id), tracking_versions(settings) as change:
        counts = dict(validate_period(settings, period_id))
    result = {**counts, "period_id": period_id, "delta_versions": change.written}
    return {**result, "held_back_alert": alert_held_back(settings, result)}


def publish(settings: Settings, period_id: str) -> dict[str, Any]:
    """``aggregate_period`` under the period's lock; its counts plus ``period_id`` and ``delta_versions``."""
    from readiness.pipeline.aggregate import aggregate_period

    with period_lock(settings, period_id), tracking_versions(settings) as change:
        counts = dict(aggregate_period(settings, period_id))
    return {**counts, "period_id": period_id, "delta_versions": change.written}


def refresh_period(settings: Settings, period_id: str) -> dict[str, Any]:
    """Validate then publish one period in one Spark session (one lock for both)."""
    period_id = parse_period(period_id).id
    with period_lock(settings, period_id), tracking_versions(settings) as change:
        validated = validate(settings, period_id)
        published = publish(settings, period_id)
    return {"period_id": period_id, "validate": validated, "publish": published, "delta_versions": change.written}


def close_period(settings: Settings, period_id: str, run_id: str, refreeze: bool = False) -> dict[str, Any]:
    """Compliance for a period at its close: validate + publish, freeze the gold tables, list the
    units still missing (read at the frozen version)."""
    period = parse_period(period_id)
    with period_lock(settings, period.id), tracking_versions(settings) as change:
        refreshed = refresh_period(settings, period.id)
        freeze = freeze_period(settings, period.id, run_id, refreeze)
        missing = missing_units(settings, period.id, freeze["versions"].get(GOLD_COMPLETENESS))
    return {
        "period_id": period.id,
        "due_date": period.due_date().isoformat(),
        "validate": refreshed["validate"],
        "publish": refreshed["publish"],
        "freeze": freeze,
        "missing_units": missing,
        "units_missing": sum(len(u) for u in missing.values()),
        "delta_versions": change.written,
    }


def rebuild_period(settings: Settings, period_id: str, methodology: str | None = None,
                   refreeze: bool = False, run_id: str = "manual") -> dict[str, Any]:
    """Rebuild a period from bronze (validate + publish, the same functions as every DAG).

    ``methodology`` (``ict-index`` or ``ict-index.v1``) is checked first (``ValueError`` before any
    Spark work) and the result counts its index rows. ``refreeze`` records the rebuilt versions
    as the period's freeze. Over unchanged bronze data nothing is rewritten (same Delta versions).
    """
    period_id = parse_period(period_id).id
    chosen = resolve_methodology(methodology, shipped_methodologies())
    with period_lock(settings, period_id), tracking_versions(settings) as change:
        refreshed = refresh_period(settings, period_id)
        freeze = freeze_period(settings, period_id, run_id, refreeze=True) if refreeze else None
    result = {"period_id": period_id, "validate": refreshed["validate"], "publish": refreshed["publish"],
              "freeze": freeze, "delta_versions": change.written}
    if chosen is not None:
        index = store.read(get_spark(settings), settings, GOLD_INDEX)
        result["methodology"] = {"id": chosen[0], "version": chosen[1], "index_rows": index.where(
            (F.col("period_id") == period_id) & (F.col("methodology_id") == chosen[0])
            & (F.col("methodology_version") == chosen[1])).count()}
    return result
