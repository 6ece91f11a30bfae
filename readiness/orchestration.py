"""What the DAGs decide and do around the jobs: changed periods, period close, freezing, locks.

The DAG files stay thin: each task calls one function here (or in ``readiness.alerts`` /
``readiness.run_health``), which calls the jobs in ``readiness.pipeline``. This module imports
nothing heavy at module level (no Spark, no Airflow), so the dag-processor can import it and the
pure decisions are unit-testable:

- :func:`periods_to_close` / :func:`periods_closing_on`: which periods close on a given day
  (the day after their due date in Asia/Ho_Chi_Minh; due dates come from the reporting calendar).
- :func:`changed_periods` / :func:`partitions_added`: which periods received bronze rows between
  two Delta versions, read from the table's transaction log (``_delta_log/<version>.json``: the
  ``add`` actions carry the ``period_id`` partition value), without scanning data.
- :func:`periods_from_events`: the periods named by the bronze asset events that triggered a run.
- :func:`plan_freeze`: which gold table versions to record for a period.
- :func:`resolve_methodology`: a methodology parameter checked against the shipped files.

Job wrappers (Spark inside): :func:`run_ingest`, :func:`validate`, :func:`publish`,
:func:`refresh_period`, :func:`close_period`, :func:`rebuild_period`, :func:`freeze_period`.
Each returns a JSON-able dict (the task's XCom) including ``delta_versions``: the tables whose
Delta version changed during the call, with their new version.

Concurrency: the ingest shares one Structured Streaming checkpoint, and several DAGs may rebuild
the same period; :func:`lock` serialises them with ``fcntl`` locks under ``<var_dir>/locks``
(one machine, or a shared filesystem with working POSIX locks). Airflow's ``max_active_runs=1``
keeps one run per DAG; the locks keep one writer per period across DAGs.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from readiness.periods import REPORT_TYPES, Period, ReportingCalendar, default_calendar, parse_period
from readiness.settings import Settings

# Table names (the same strings as readiness.tables, which imports pyspark and is kept out of here).
BRONZE_REPORTS = "bronze_report_events"
DEAD_LETTERS = "bronze_dead_letters"
GOLD_COMPLETENESS = "gold_reporting_completeness"
GOLD_INDEX = "gold_readiness_index"
FREEZES = "gold_period_freezes"

# The Airflow asset the ingest DAG updates when new report events reach bronze.
BRONZE_ASSET_NAME = "bronze_report_events"
BRONZE_ASSET_URI = "x-readiness://lake/bronze_report_events"

_PERIODS_PER_YEAR = {"quarterly": 4, "six_monthly": 2, "yearly": 1}
_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")


# --------------------------------------------------------------------------------------------
# Period close


def close_day(moment: datetime, tz: str | None = None) -> date:
    """The local calendar day (default: the reporting calendar's time zone) of an aware instant."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(ZoneInfo(tz or default_calendar().timezone)).date()


def periods_closing_on(day: date, calendar: ReportingCalendar | None = None) -> list[Period]:
    """Periods that close on ``day``: their due date is the day before.

    A report is on time until the end of its due date in Asia/Ho_Chi_Minh, so a period is closed
    from 00:00 local time the next day. Several report types can close on the same day (on the
    reference calendar the fourth quarter and the year are both due on 20 December).
    """
    cal = calendar or default_calendar()
    due = day - timedelta(days=1)
    found = []
    for year in (due.year - 1, due.year, due.year + 1):  # year_offset in the calendar may shift a due date
        for report_type in REPORT_TYPES:
            for index in range(1, _PERIODS_PER_YEAR[report_type] + 1):
                period = Period(year, report_type, index)
                if cal.due_date(period) == due:
                    found.append(period)
    return sorted(found, key=lambda p: (REPORT_TYPES.index(p.report_type), p.year, p.index))


def periods_to_close(run_after: datetime, requested: str | None = None,
                     calendar: ReportingCalendar | None = None) -> list[str]:
    """The period-close decision of one run of ``readiness_period_close``.

    ``requested`` (the DAG's ``period_id`` param) closes that period whatever the day; otherwise
    the periods whose due date was the day before ``run_after``'s local day. Empty: nothing to do.
    """
    if requested:
        return [parse_period(requested).id]
    cal = calendar or default_calendar()
    return [p.id for p in periods_closing_on(close_day(run_after, cal.timezone), cal)]


def next_close_days(start: date, count: int, calendar: ReportingCalendar | None = None) -> list[tuple[date, list[str]]]:
    """The next ``count`` days on or after ``start`` on which some period closes (for docs and checks)."""
    result: list[tuple[date, list[str]]] = []
    day = start
    while len(result) < count and day < start + timedelta(days=3 * 366):
        closing = periods_closing_on(day, calendar)
        if closing:
            result.append((day, [p.id for p in closing]))
        day += timedelta(days=1)
    return result


# --------------------------------------------------------------------------------------------
# Delta versions and changed periods, from the transaction log


def table_dir(settings: Settings, name: str) -> Path:
    return Path(settings.table_path(name))


def table_version(path: Path) -> int | None:
    """Latest committed version of the Delta table at ``path`` (highest ``_delta_log/N.json``), or None."""
    log = Path(path) / "_delta_log"
    if not log.is_dir():
        return None
    versions = [int(m.group(1)) for f in log.iterdir() if (m := _COMMIT_FILE.match(f.name))]
    return max(versions) if versions else None


def lake_versions(settings: Settings) -> dict[str, int]:
    """``table -> latest Delta version`` for every Delta table under the lake directory."""
    lake = Path(settings.lake_dir)
    if not lake.is_dir():
        return {}
    versions = {}
    for child in sorted(lake.iterdir()):
        version = table_version(child)
        if version is not None:
            versions[child.name] = version
    return versions


def versions_written(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Tables whose version changed from ``before`` to ``after``, with the new version.

    The run register (``ops_*``) is left out: other runs write it at any time. Another writer of
    the same data tables in between would show up too; the period locks make that rare.
    """
    return {t: v for t, v in sorted(after.items()) if before.get(t) != v and not t.startswith("ops_")}


def commit_actions(path: Path, after: int | None, upto: int | None) -> Iterator[dict]:
    """The actions (one JSON object per line) of the commits ``after < version <= upto``.

    ``after=None`` starts at version 0; ``upto=None`` reads to the latest commit. A commit file
    that is gone (log cleanup after ``delta.logRetentionDuration``, 30 days by default) raises
    ``FileNotFoundError``: the caller cannot tell what changed and must treat everything as changed.
    """
    path = Path(path)
    upto = table_version(path) if upto is None else upto
    if upto is None:
        return
    for version in range(0 if after is None else after + 1, upto + 1):
        commit = path / "_delta_log" / f"{version:020d}.json"
        with open(commit, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


def partitions_added(actions: Iterable[Mapping[str, Any]], column: str = "period_id") -> set[str]:
    """Partition values of ``column`` in the ``add`` actions (files written) of commit actions."""
    values = set()
    for action in actions:
        add = action.get("add")
        if add:
            value = (add.get("partitionValues") or {}).get(column)
            if value:
                values.add(value)
    return values


def sort_periods(period_ids: Iterable[str]) -> list[str]:
    """Period ids in data-window order (then quarterly, six-monthly, yearly); invalid ids dropped."""
    parsed = []
    for period_id in set(period_ids):
        try:
            parsed.append(parse_period(period_id))
        except ValueError:
            continue
    return [p.id for p in sorted(parsed, key=lambda p: (p.window()[1], REPORT_TYPES.index(p.report_type)))]


def changed_periods(settings: Settings, after_version: int | None, upto_version: int | None = None) -> list[str]:
    """Periods that received bronze report rows in the commits ``after_version < v <= upto_version``."""
    return sort_periods(partitions_added(commit_actions(table_dir(settings, BRONZE_REPORTS), after_version,
                                                        upto_version)))


def periods_from_events(extras: Iterable[Mapping[str, Any] | None], requested: Iterable[str] = ()) -> list[str]:
    """Union of the ``periods`` listed in bronze asset events' extras and of ``requested``."""
    found: set[str] = set(requested or ())
    for extra in extras:
        found.update((extra or {}).get("periods") or [])
    return sort_periods(found)


# --------------------------------------------------------------------------------------------
# Locks


_held: dict[str, int] = {}  # locks this process holds: key -> depth
_held_guard = threading.Lock()


@contextlib.contextmanager
def lock(settings: Settings, name: str, timeout: float = 4 * 3600, poll: float = 1.0) -> Iterator[Path]:
    """An exclusive ``fcntl`` lock ``<var_dir>/locks/<name>.lock``, re-entrant within a thread.

    Waits up to ``timeout`` seconds (then ``TimeoutError``): a second ingest or a second rebuild of
    the same period waits for the first instead of racing it on the checkpoint or the partition.
    """
    path = Path(settings.var_dir) / "locks" / f"{name}.lock"
    key = f"{path.absolute()}@{threading.get_ident()}"  # re-entrant per thread; other threads wait
    with _held_guard:
        if _held.get(key):
            _held[key] += 1
            reentrant = True
        else:
            reentrant = False
    if reentrant:
        try:
            yield path
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with open(path, "a+") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"lock {path} still held after {timeout:.0f}s") from None
                time.sleep(poll)
        with _held_guard:
            _held[key] = 1
        try:
            yield path
        finally:
            with _held_guard:
                _held.pop(key, None)
            fcntl.flock(fh, fcntl.LOCK_UN)


def period_lock(settings: Settings, period_id: str):
    return lock(settings, f"period-{parse_period(period_id).id}")


# --------------------------------------------------------------------------------------------
# Job wrappers (the tasks' bodies)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # Spark returns session-time (UTC) timestamps without a zone
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def last_event_at(settings: Settings) -> str | None:
    """When the newest event in bronze (report or dead letter) reached Kafka, ISO UTC, or None."""
    from pyspark.sql import functions as F

    from readiness import lake
    from readiness.spark_session import get_spark

    spark = get_spark(settings)
    newest = []
    for name in (BRONZE_REPORTS, DEAD_LETTERS):
        if lake.exists(spark, settings, name):
            value = lake.read(spark, settings, name).agg(F.max(F.unix_micros("kafka_timestamp"))).collect()[0][0]
            if value is not None:
                newest.append(int(value))
    if not newest:
        return None
    return _iso(datetime.fromtimestamp(max(newest) / 1e6, tz=timezone.utc))


def run_ingest(settings: Settings) -> dict[str, Any]:
    """Ingest the events not yet in bronze (one ingest at a time) and say which periods got rows.

    Returns the job's counts plus ``periods`` (periods with new bronze rows, from the Delta log),
    ``bronze_version_before``/``bronze_version``, ``delta_versions`` and ``last_event_at``.
    """
    from readiness.pipeline.ingest import ingest_reports

    with lock(settings, "ingest"):
        before = lake_versions(settings)
        counts = dict(ingest_reports(settings))
        after = lake_versions(settings)
    bronze_before, bronze_after = before.get(BRONZE_REPORTS), after.get(BRONZE_REPORTS)
    periods = [] if bronze_after == bronze_before else changed_periods(settings, bronze_before, bronze_after)
    counts.update(
        periods=periods,
        bronze_version_before=bronze_before,
        bronze_version=bronze_after,
        delta_versions=versions_written(before, after),
        last_event_at=last_event_at(settings),
    )
    return counts


def validate(settings: Settings, period_id: str) -> dict[str, Any]:
    """``validate_period`` under the period's lock; its counts plus ``period_id`` and ``delta_versions``."""
    from readiness.pipeline.validate import validate_period

    with period_lock(settings, period_id):
        before = lake_versions(settings)
        counts = dict(validate_period(settings, period_id))
        counts.update(period_id=period_id, delta_versions=versions_written(before, lake_versions(settings)))
    return counts


def publish(settings: Settings, period_id: str) -> dict[str, Any]:
    """``aggregate_period`` under the period's lock; its counts plus ``period_id`` and ``delta_versions``."""
    from readiness.pipeline.aggregate import aggregate_period

    with period_lock(settings, period_id):
        before = lake_versions(settings)
        counts = dict(aggregate_period(settings, period_id))
        counts.update(period_id=period_id, delta_versions=versions_written(before, lake_versions(settings)))
    return counts


def refresh_period(settings: Settings, period_id: str) -> dict[str, Any]:
    """Validate then publish one period in one Spark session (one lock for both)."""
    period_id = parse_period(period_id).id
    with period_lock(settings, period_id):
        before = lake_versions(settings)
        validated = validate(settings, period_id)
        published = publish(settings, period_id)
        written = versions_written(before, lake_versions(settings))
    return {"period_id": period_id, "validate": validated, "publish": published, "delta_versions": written}


# --------------------------------------------------------------------------------------------
# Freezing a closed period's published tables


def gold_tables(versions: Mapping[str, int]) -> dict[str, int]:
    """The published tables (``gold_*``, not the freeze register itself) among ``table -> version``."""
    return {t: v for t, v in sorted(versions.items()) if t.startswith("gold_") and t != FREEZES}


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
    from pyspark.sql import functions as F

    from readiness import lake
    from readiness.spark_session import get_spark

    spark = get_spark(settings)
    if not lake.exists(spark, settings, FREEZES):
        return {}
    rows = (lake.read(spark, settings, FREEZES).where(F.col("period_id") == period_id)
            .select("table_name", "version", F.unix_micros("frozen_at").alias("frozen_us"), "run_id").collect())
    return {r["table_name"]: (int(r["version"]), datetime.fromtimestamp(r["frozen_us"] / 1e6, tz=timezone.utc),
                              r["run_id"]) for r in rows}


def read_frozen(settings: Settings, table: str, period_id: str):
    """The period's rows of a gold table as frozen at its close (the current rows if not frozen)."""
    from pyspark.sql import functions as F

    from readiness import lake
    from readiness.spark_session import get_spark

    version = frozen_versions(settings, period_id).get(table)
    return lake.read(get_spark(settings), settings, table, version).where(F.col("period_id") == period_id)


def freeze_period(settings: Settings, period_id: str, run_id: str, refreeze: bool = False,
                  now: datetime | None = None) -> dict[str, Any]:
    """Record the current Delta version of every gold table for the period (see :func:`plan_freeze`).

    One row per table in ``gold_period_freezes`` (``period_id, table_name, version, frozen_at,
    run_id``), the partition ``period_id`` replaced as a whole. Delta 4.0 has no table tags, so the
    register is a table; time travel (``versionAsOf``) reads a frozen version back
    (:func:`read_frozen`). Keep ``delta.deletedFileRetentionDuration`` longer than the period
    between closes, or do not VACUUM the gold tables, so the frozen versions stay readable.
    """
    from readiness import lake
    from readiness.spark_session import get_spark

    period_id = parse_period(period_id).id
    with period_lock(settings, period_id):
        existing_rows = _freeze_rows(settings, period_id)
        existing = {t: v for t, (v, _, _) in existing_rows.items()}
        current = gold_tables(lake_versions(settings))
        plan = plan_freeze(existing, current, refreeze)
        if plan is None:
            frozen_at = min((at for _, at, _ in existing_rows.values()), default=None)
            return {"period_id": period_id, "frozen": False, "versions": existing, "frozen_at": _iso(frozen_at)}
        moment = now or datetime.now(timezone.utc)
        rows = []
        for table, version in sorted(plan.items()):
            kept = existing_rows.get(table) if not refreeze and table in existing else None
            rows.append((period_id, table, int(version), kept[1] if kept else moment, kept[2] if kept else run_id))
        spark = get_spark(settings)
        lake.overwrite_partition(spark.createDataFrame(rows, FREEZE_COLUMNS), settings, FREEZES, "period_id", period_id)
    return {"period_id": period_id, "frozen": True, "versions": dict(sorted(plan.items())), "frozen_at": _iso(moment)}


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
    from pyspark.sql import functions as F

    from readiness import lake
    from readiness.spark_session import get_spark

    spark = get_spark(settings)
    if not lake.exists(spark, settings, GOLD_COMPLETENESS):
        return {}
    df = lake.read(spark, settings, GOLD_COMPLETENESS, version).where(F.col("period_id") == period_id)
    if "basis" in df.columns:
        df = df.where(F.col("basis") == "as_reported")
    return missing_by_province((r["province_code"], r["missing_units"])
                               for r in df.select("province_code", "missing_units").collect())


def close_period(settings: Settings, period_id: str, run_id: str, refreeze: bool = False) -> dict[str, Any]:
    """Compliance for a period at its close: validate + publish, freeze the gold tables, list the
    units still missing (read at the frozen version)."""
    period = parse_period(period_id)
    with period_lock(settings, period.id):
        before = lake_versions(settings)
        refreshed = refresh_period(settings, period.id)
        freeze = freeze_period(settings, period.id, run_id, refreeze)
        missing = missing_units(settings, period.id, freeze["versions"].get(GOLD_COMPLETENESS))
        written = versions_written(before, lake_versions(settings))
    return {
        "period_id": period.id,
        "due_date": period.due_date().isoformat(),
        "validate": refreshed["validate"],
        "publish": refreshed["publish"],
        "freeze": freeze,
        "missing_units": missing,
        "units_missing": sum(len(u) for u in missing.values()),
        "delta_versions": written,
    }


# --------------------------------------------------------------------------------------------
# Reprocessing


def shipped_methodologies() -> dict[str, str]:
    """``methodology id -> version`` that ``aggregate_period`` applies (the highest shipped version)."""
    from readiness.scoring import available_methodologies, load_methodology

    return {m: load_methodology(m).version for m in available_methodologies()}


_METHODOLOGY_SPEC = re.compile(r"^(?P<id>[a-z0-9][a-z0-9-]*?)(?:\.v(?P<version>[0-9][0-9.]*))?$")


def resolve_methodology(spec: str | None, shipped: Mapping[str, str]) -> tuple[str, str] | None:
    """``ict-index`` or ``ict-index.v1`` (the file-name form) -> ``(id, version)``; None for no spec.

    Raises ``ValueError`` when the id is not shipped or the version is not the one the aggregation
    applies (it scores every shipped methodology at its highest version).
    """
    if not spec:
        return None
    match = _METHODOLOGY_SPEC.match(spec.strip())
    if not match:
        raise ValueError(f"methodology {spec!r} is not of the form 'ict-index' or 'ict-index.v1'")
    methodology_id, version = match["id"], match["version"]
    if methodology_id not in shipped:
        raise ValueError(f"unknown methodology {methodology_id!r}; shipped: {', '.join(sorted(shipped))}")
    if version is not None and version != shipped[methodology_id]:
        raise ValueError(f"methodology {methodology_id} version {version} is not the shipped version "
                         f"{shipped[methodology_id]} (the aggregation applies the shipped version)")
    return methodology_id, shipped[methodology_id]


def rebuild_period(settings: Settings, period_id: str, methodology: str | None = None,
                   refreeze: bool = False, run_id: str = "manual") -> dict[str, Any]:
    """Rebuild a period from bronze (validate + publish, the same functions as every DAG).

    ``methodology`` (``ict-index`` or ``ict-index.v1``) is checked first (``ValueError`` before any
    Spark work) and the result counts its index rows. ``refreeze`` records the rebuilt versions
    as the period's freeze. Over unchanged bronze data nothing is rewritten (same Delta versions).
    """
    period_id = parse_period(period_id).id
    chosen = resolve_methodology(methodology, shipped_methodologies())
    with period_lock(settings, period_id):
        before = lake_versions(settings)
        refreshed = refresh_period(settings, period_id)
        freeze = freeze_period(settings, period_id, run_id, refreeze=True) if refreeze else None
        written = versions_written(before, lake_versions(settings))
    result = {"period_id": period_id, "validate": refreshed["validate"], "publish": refreshed["publish"],
              "freeze": freeze, "delta_versions": written}
    if chosen is not None:
        from pyspark.sql import functions as F

        from readiness import lake
        from readiness.spark_session import get_spark

        index = lake.read(get_spark(settings), settings, GOLD_INDEX)
        result["methodology"] = {"id": chosen[0], "version": chosen[1], "index_rows": index.where(
            (F.col("period_id") == period_id) & (F.col("methodology_id") == chosen[0])
            & (F.col("methodology_version") == chosen[1])).count()}
    return result


# --------------------------------------------------------------------------------------------
# Airflow glue shared by the DAG files (no Airflow import here: the callback is a plain function)


def default_args(retries: int = 2, retry_delay: timedelta = timedelta(minutes=2),
                 execution_timeout: timedelta = timedelta(hours=2)) -> dict[str, Any]:
    """The platform's task defaults: owner, retries with a delay, timeout, failure alert."""
    from readiness.alerts import task_failure_callback

    return {
        "owner": "data-platform",
        "retries": retries,
        "retry_delay": retry_delay,
        "execution_timeout": execution_timeout,
        "on_failure_callback": task_failure_callback,
    }
