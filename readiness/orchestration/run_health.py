"""Run health: one row per pipeline run in ``ops_pipeline_runs``, consumer lag, freshness per province.

``ops_pipeline_runs`` (Delta, one row per DAG run, MERGEd on ``(dag_id, run_id)`` so a retried
or rerun ``record_run`` task leaves one row):

| column | meaning |
| --- | --- |
| ``run_id``, ``dag_id``, ``state`` | the Airflow run and its outcome (``failed`` if any task failed) |
| ``periods`` | the periods the run worked on |
| ``started_at``, ``ended_at``, ``duration_s`` | UTC; from the DAG run's start to the record |
| ``events_in``, ``bronze_rows``, ``target_plans``, ``dead_letters``, ``already_in_bronze`` | Kafka messages ingested by the run, and where they went |
| ``events_validated``, ``events_accepted``, ``events_quarantined``, ``events_held_back``, ``events_duplicate`` | bronze events validated, over all its periods, and what became of them |
| ``consumer_lag`` | ``"<topic>:<partition>" -> messages`` not yet ingested when the run ended |
| ``delta_versions`` | ``table -> version`` of each Delta table the run wrote |
| ``task_states`` | ``task -> state`` of the run's other tasks |

A row reconciles as the jobs' counts do::

    events_in = bronze_rows + target_plans + dead_letters + already_in_bronze
    events_validated = events_accepted + events_quarantined + events_held_back + events_duplicate

(``already_in_bronze``: offsets read again after a checkpoint was set aside or a batch retried;
``events_held_back``: accepted reports of a province over its quarantine share, waiting;
``events_duplicate``: exact re-deliveries, dropped.) The table gains columns by schema evolution
on the MERGE; rows written before a column existed read it as 0 (:func:`recent_runs`).

The final task of each pipeline DAG (``record_run``, an Airflow teardown task, so it runs even
when an upstream task failed and does not decide the run's state) calls
:func:`record_airflow_run`, which reads the upstream tasks' XCom counts.

Consumer lag = the topics' end offsets (asked of Kafka) minus the offsets the ingest checkpoint
has committed (``<checkpoint_dir>/ingest_reports/offsets/<n>`` of the latest batch ``n`` that
has a ``commits/<n>``).

``readiness status`` (:func:`register` adds it to the CLI) prints the latest runs (with a line of
their counts as they reconcile, :func:`counts_text`) and the freshness of each province: when its last event reached bronze and its last accepted report
reached silver.

Spark and Delta are imported inside the functions that read or write the register, so the
``readiness`` command (which registers ``status`` here) starts without loading them.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from kafka import KafkaConsumer, TopicPartition

from readiness.domain.periods import REPORTING_TIMEZONE
from readiness.domain.reference import provinces, provinces_in_force
from readiness.lake.log import lake_versions
from readiness.lake.tables import BRONZE_REPORTS, INGEST_CHECKPOINT, OPS_RUNS, SILVER_VALUES
from readiness.ops.kafka_client import PIPELINE, kafka_python_config
from readiness.orchestration.calendar import sort_periods
from readiness.orchestration.stream_health import document_alive, health_path, read_health, status_lines, verdict
from readiness.settings import Settings, load_settings
from readiness.terminal import Column, format_rows

OPS_COLUMNS = (
    "run_id string, dag_id string, state string, periods array<string>, "
    "started_at timestamp, ended_at timestamp, duration_s double, "
    "events_in long, bronze_rows long, target_plans long, dead_letters long, already_in_bronze long, "
    "events_validated long, events_accepted long, events_quarantined long, events_held_back long, "
    "events_duplicate long, "
    "consumer_lag map<string,long>, delta_versions map<string,long>, task_states map<string,string>"
)
INGEST_COUNTS = ("events_in", "bronze_rows", "target_plans", "dead_letters", "already_in_bronze")
# What ``validate_period`` returns -> the row's column (its ``events_in`` is the row's ``events_validated``).
VALIDATE_COUNTS = {"events_in": "events_validated", "events_accepted": "events_accepted",
                   "events_quarantined": "events_quarantined", "events_held_back": "events_held_back",
                   "events_duplicate": "events_duplicate"}
COUNT_FIELDS = (*INGEST_COUNTS, *VALIDATE_COUNTS.values())
_BATCH_FILE = re.compile(r"^[0-9]+$")


# --------------------------------------------------------------------------------------------
# Consumer lag


def parse_offset_log(text: str) -> dict[str, dict[int, int]]:
    """``topic -> {partition: offset}`` from a Structured Streaming ``offsets/<n>`` file.

    The file is ``v1``, a JSON line of batch metadata, then one line per source: for the Kafka
    source a JSON object ``{"topic": {"0": 12, "1": 3}}`` (``-`` when a source has no offset).
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("v"):
        raise ValueError("not a Structured Streaming offset log (no version line)")
    offsets: dict[str, dict[int, int]] = {}
    for line in lines[2:]:
        if line == "-":
            continue
        source = json.loads(line)
        if not isinstance(source, dict):
            continue
        for topic, partitions in source.items():
            if isinstance(partitions, dict):
                offsets.setdefault(topic, {}).update({int(p): int(o) for p, o in partitions.items()})
    return offsets


def committed_offsets(checkpoint: Path) -> dict[str, dict[int, int]]:
    """The offsets of the latest committed batch of a streaming checkpoint (empty if none yet).

    Batch ``n`` is committed when ``commits/<n>`` exists; without a ``commits`` directory the
    latest ``offsets/<n>`` is taken.
    """
    checkpoint = Path(checkpoint)

    def batches(sub: str) -> list[int]:
        folder = checkpoint / sub
        return sorted(int(f.name) for f in folder.iterdir() if _BATCH_FILE.match(f.name)) if folder.is_dir() else []

    offsets = batches("offsets")
    if not offsets:
        return {}
    commits = set(batches("commits"))
    if (checkpoint / "commits").is_dir():
        done = [n for n in offsets if n in commits]
        if not done:
            return {}
        batch = done[-1]
    else:
        batch = offsets[-1]
    return parse_offset_log((checkpoint / "offsets" / str(batch)).read_text(encoding="utf-8"))


def consumer_lag(end: Mapping[str, Mapping[int, int]], committed: Mapping[str, Mapping[int, int]],
                 beginning: Mapping[str, Mapping[int, int]] | None = None) -> dict[str, int]:
    """``"topic:partition" -> end offset - committed offset`` for every partition of ``end``.

    A partition the checkpoint has not reached yet counts from its beginning offset (0 unless
    ``beginning`` says otherwise, e.g. after retention deleted old messages).
    """
    lag = {}
    for topic in sorted(end):
        for partition in sorted(end[topic]):
            start = (beginning or {}).get(topic, {}).get(partition, 0)
            done = committed.get(topic, {}).get(partition, start)
            lag[f"{topic}:{partition}"] = max(0, int(end[topic][partition]) - int(done))
    return lag


def topic_offsets(settings: Settings, topics: Iterable[str]) -> tuple[dict[str, dict[int, int]], dict[str, dict[int, int]]]:
    """(end offsets, beginning offsets) per topic and partition, asked of the broker."""
    consumer = KafkaConsumer(**kafka_python_config(settings, PIPELINE), enable_auto_commit=False,
                             request_timeout_ms=15_000, api_version_auto_timeout_ms=10_000)
    try:
        partitions = [TopicPartition(t, p) for t in sorted(set(topics)) for p in sorted(consumer.partitions_for_topic(t) or [])]
        end, begin = consumer.end_offsets(partitions), consumer.beginning_offsets(partitions)
    finally:
        consumer.close()
    by_topic_end: dict[str, dict[int, int]] = {}
    by_topic_begin: dict[str, dict[int, int]] = {}
    for tp in partitions:
        by_topic_end.setdefault(tp.topic, {})[tp.partition] = end[tp]
        by_topic_begin.setdefault(tp.topic, {})[tp.partition] = begin[tp]
    return by_topic_end, by_topic_begin


def ingest_lag(settings: Settings) -> dict[str, int]:
    """Current consumer lag of the ingest checkpoint on the topics it reads."""
    committed = committed_offsets(Path(settings.checkpoint_dir) / INGEST_CHECKPOINT)
    end, begin = topic_offsets(settings, set(committed) | {settings.topic_reports})
    return consumer_lag(end, committed, begin)


# --------------------------------------------------------------------------------------------
# One row per run


def _dicts(value: Any) -> Iterable[Mapping[str, Any]]:
    """The count dicts inside a task's XCom: itself, list items, and nested stage results."""
    if isinstance(value, Mapping):
        yield value
        for key in ("ingest", "validate", "publish"):
            if isinstance(value.get(key), Mapping):
                yield from _dicts(value[key])
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _dicts(item)


def summarise_run(xcoms: Mapping[str, Any]) -> dict[str, Any]:
    """Counts, periods and Delta versions of a run from its tasks' XComs (``task_id -> value``).

    Ingest results (they have ``batches``) give ``events_in``, ``bronze_rows``, ``target_plans``,
    ``dead_letters`` and ``already_in_bronze``; validation results (``events_accepted``) give
    validated, accepted, quarantined, held back and duplicate events (a count a result lacks is 0);
    ``period_id``/``periods`` give the periods; ``delta_versions`` are merged (highest version).
    """
    totals = dict.fromkeys(COUNT_FIELDS, 0)
    periods: set[str] = set()
    versions: dict[str, int] = {}
    for value in xcoms.values():
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            periods.update(value)  # a task that returns the periods it found
            continue
        for counts in _dicts(value):
            if "batches" in counts:
                for key in INGEST_COUNTS:
                    totals[key] += int(counts.get(key) or 0)
            if "events_accepted" in counts:
                for key, column in VALIDATE_COUNTS.items():
                    totals[column] += int(counts.get(key) or 0)
            if counts.get("period_id"):
                periods.add(str(counts["period_id"]))
            periods.update(counts.get("periods") or [])
            for table, version in (counts.get("delta_versions") or {}).items():
                versions[table] = max(int(version), versions.get(table, -1))

    return {**totals, "periods": sort_periods(periods), "delta_versions": dict(sorted(versions.items()))}


def run_state(task_states: Mapping[str, str | None]) -> str:
    states = {str(s) for s in task_states.values()}
    if states & {"failed", "upstream_failed"}:
        return "failed"
    if states & {"running", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "deferred", "None"}:
        return "incomplete"
    return "success"


def run_row(*, run_id: str, dag_id: str, started_at: datetime, ended_at: datetime, xcoms: Mapping[str, Any],
            task_states: Mapping[str, str | None], consumer_lag: Mapping[str, int]) -> dict[str, Any]:
    """The ``ops_pipeline_runs`` row of a run (a plain dict, JSON-able but for the two datetimes)."""
    summary = summarise_run(xcoms)
    return {
        "run_id": run_id,
        "dag_id": dag_id,
        "state": run_state(task_states),
        "periods": summary["periods"],
        "started_at": started_at,
        "ended_at": ended_at,
        "duration_s": round((ended_at - started_at).total_seconds(), 3),
        **{k: summary[k] for k in COUNT_FIELDS},
        "consumer_lag": dict(consumer_lag),
        "delta_versions": summary["delta_versions"],
        "task_states": {k: str(v) for k, v in sorted(task_states.items())},
    }


def _arrow_type(spark_type: str) -> Any:
    """The Arrow type of one of :data:`OPS_COLUMNS`' Spark types (the register's only ones)."""
    import pyarrow as pa

    scalar = {"string": pa.string(), "long": pa.int64(), "double": pa.float64(),
              "timestamp": pa.timestamp("us", tz="UTC")}
    if spark_type.startswith("array<"):
        return pa.list_(scalar[spark_type[6:-1]])
    if spark_type.startswith("map<"):
        key, value = spark_type[4:-1].split(",")
        return pa.map_(scalar[key], scalar[value])
    return scalar[spark_type]


def record_run(settings: Settings, row: Mapping[str, Any], attempts: int = 5) -> None:
    """MERGE the row into ``ops_pipeline_runs`` on ``(dag_id, run_id)`` (created on first use).

    A table written before a column existed gains it (schema evolution; its older rows hold null,
    read as 0). A count the row lacks is written as 0. Written with ``deltalake`` (delta-rs), not
    Spark: a one-row MERGE at the end of every DAG run is not worth a Spark session's start.
    """
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake
    from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

    columns = [c.strip().split(" ", 1) for c in re.split(r",\s*(?![^<]*>)", OPS_COLUMNS)]
    schema = pa.schema([pa.field(name, _arrow_type(kind)) for name, kind in columns])
    values = {name: int(row.get(name) or 0) if name in COUNT_FIELDS else row[name] for name, _ in columns}
    for name, kind in columns:  # Arrow takes a map as its (key, value) pairs
        if kind.startswith("map<"):
            values[name] = list((values[name] or {}).items())
    frame = pa.Table.from_pylist([values], schema=schema)
    path = str(settings.table_path(OPS_RUNS))
    for attempt in range(1, attempts + 1):
        try:
            try:
                table = DeltaTable(path)
            except TableNotFoundError:
                try:
                    write_deltalake(path, frame, mode="error")
                    return
                except DeltaError:  # another run created the table meanwhile: MERGE into it
                    table = DeltaTable(path)
            (table.merge(frame, "t.dag_id = s.dag_id AND t.run_id = s.run_id", source_alias="s", target_alias="t",
                         merge_schema=True)
             .when_matched_update_all().when_not_matched_insert_all().execute())
            return
        except CommitFailedError as exc:  # concurrent writers (two DAGs ending together)
            if attempt == attempts:
                raise RuntimeError(f"could not record run {row.get('run_id')} in {OPS_RUNS}: {exc}") from exc
            time.sleep(2 * attempt)


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def record_airflow_run(context: Mapping[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Body of the ``record_run`` task: collect the run's XComs and task states, write the row.

    Returns the row with ISO times (the task's XCom).
    """
    settings = settings or load_settings()
    ti, dag_run = context["ti"], context["dag_run"]
    own = ti.task_id
    task_ids = [t for t in context["dag"].task_ids if t != own]
    xcoms = {t: ti.xcom_pull(task_ids=t) for t in task_ids}
    params = context.get("params") or {}
    if params.get("period_id"):  # the run's period, also when its tasks failed before returning
        xcoms["params"] = {"period_id": params["period_id"]}
    states_by_run = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id]) or {}
    states = {t: s for t, s in (states_by_run.get(dag_run.run_id) or {}).items() if t != own}
    try:
        lag = ingest_lag(settings)
    except Exception as exc:  # Kafka unreachable: record the run anyway
        print(f"consumer lag not available: {exc!r}", file=sys.stderr)
        lag = {}
    row = run_row(run_id=dag_run.run_id, dag_id=dag_run.dag_id, started_at=_aware(dag_run.start_date),
                  ended_at=datetime.now(timezone.utc), xcoms=xcoms, task_states=states, consumer_lag=lag)
    record_run(settings, row)
    return {**row, "started_at": row["started_at"].isoformat(), "ended_at": row["ended_at"].isoformat()}


# --------------------------------------------------------------------------------------------
# Reading back


def _utc(micros: int | None) -> datetime | None:
    return None if micros is None else datetime.fromtimestamp(micros / 1e6, tz=timezone.utc)


def recent_runs(settings: Settings, limit: int = 10, dag_id: str | None = None) -> list[dict[str, Any]]:
    """The latest runs from ``ops_pipeline_runs``, newest first (empty if none recorded).

    Every count of :data:`COUNT_FIELDS` is an int: 0 in a row written before its column existed.
    """
    from pyspark.sql import functions as F

    from readiness.lake import store
    from readiness.lake.spark import get_spark

    spark = get_spark(settings)
    if not store.exists(spark, settings, OPS_RUNS):
        return []
    df = store.read(spark, settings, OPS_RUNS)
    if dag_id:
        df = df.where(F.col("dag_id") == dag_id)
    present = set(df.columns)
    df = df.select(*[c for c in df.columns if c not in COUNT_FIELDS],
                   *[(F.coalesce(F.col(c).cast("long"), F.lit(0)) if c in present else F.lit(0).cast("long")).alias(c)
                     for c in COUNT_FIELDS])
    df = (df.withColumn("started_us", F.unix_micros("started_at")).withColumn("ended_us", F.unix_micros("ended_at"))
          .drop("started_at", "ended_at").orderBy(F.col("started_us").desc()).limit(limit))
    rows = []
    for r in df.collect():
        row = r.asDict()
        row["started_at"], row["ended_at"] = _utc(row.pop("started_us")), _utc(row.pop("ended_us"))
        rows.append(row)
    return rows


def _province_names(day: date) -> dict[str, str]:

    names: dict[str, str] = {}
    for p in provinces():  # former provinces first, so the ones in force on `day` win
        if p.valid_from <= day <= p.valid_to or p.code not in names:
            names[p.code] = p.name
    return names


def freshness(settings: Settings, today: date | None = None) -> list[dict[str, Any]]:
    """Per province: its last event in bronze (arrival on Kafka) and last accepted report in silver.

    Provinces in force ``today`` are listed even if nothing arrived from them; former provinces
    only when bronze holds their events.
    """
    from pyspark.sql import functions as F

    from readiness.lake import store
    from readiness.lake.spark import get_spark



    today = today or date.today()
    spark = get_spark(settings)
    result: dict[str, dict[str, Any]] = {p.code: {"province_code": p.code} for p in provinces_in_force(today)}
    if store.exists(spark, settings, BRONZE_REPORTS):
        for r in (store.read(spark, settings, BRONZE_REPORTS).groupBy("province_code")
                  .agg(F.max(F.unix_micros("kafka_timestamp")).alias("last_us"), F.count("*").alias("events"))
                  .collect()):
            entry = result.setdefault(r["province_code"], {"province_code": r["province_code"]})
            entry.update(last_event_at=_utc(r["last_us"]), events=int(r["events"]))
    if store.exists(spark, settings, SILVER_VALUES):
        for r in (store.read(spark, settings, SILVER_VALUES).groupBy("province_code")
                  .agg(F.max(F.unix_micros("submitted_at")).alias("last_us"),
                       F.max_by("period_id", "submitted_at").alias("period_id"),
                       F.countDistinct("event_id").alias("reports"))
                  .collect()):
            entry = result.setdefault(r["province_code"], {"province_code": r["province_code"]})
            entry.update(last_accepted_at=_utc(r["last_us"]), last_accepted_period=r["period_id"],
                         accepted_reports=int(r["reports"]))
    names = _province_names(today)
    rows = []
    for code in sorted(result, key=lambda c: (c is None, c or "")):
        entry = {"province_name": names.get(code), "last_event_at": None, "events": 0, "last_accepted_at": None,
                 "last_accepted_period": None, "accepted_reports": 0, **result[code]}
        rows.append(entry)
    return rows


# --------------------------------------------------------------------------------------------
# Terminal output


def _local(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else "never"


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days}d {hours:02d}h"
    return f"{hours}h {rest // 60:02d}m"


def _lag_text(lag: Mapping[str, int]) -> str:
    if not lag:
        return "n/a"
    by_topic: dict[str, list[str]] = {}
    for key, value in sorted(lag.items(), key=lambda kv: (kv[0].rsplit(":", 1)[0], int(kv[0].rsplit(":", 1)[1]))):
        topic, partition = key.rsplit(":", 1)
        by_topic.setdefault(topic, []).append(f"{partition}={value}")
    return "; ".join(f"{topic} [{' '.join(parts)}]" for topic, parts in by_topic.items())


RUN_COLUMNS = (Column("started", 16), Column("dag", 26), Column("state", 9), Column("periods", 16),
               Column("in", 6, True), Column("accepted", 8, True), Column("quarant.", 8, True),
               Column("held", 5, True), Column("dup.", 5, True), Column("dead", 5, True), Column("lag", 5, True),
               Column("took", 6, True), Column("run id"))


def _count(row: Mapping[str, Any], key: str) -> int:
    return int(row.get(key) or 0)


def counts_text(row: Mapping[str, Any]) -> str:
    """The row's counts as they reconcile: ingested = where they went; validated = what became of them."""
    ingest = (f"ingested {_count(row, 'events_in')} = {_count(row, 'bronze_rows')} reports + "
              f"{_count(row, 'target_plans')} plans + {_count(row, 'dead_letters')} dead + "
              f"{_count(row, 'already_in_bronze')} already in bronze")
    validate = (f"validated {_count(row, 'events_validated')} = {_count(row, 'events_accepted')} accepted + "
                f"{_count(row, 'events_quarantined')} quarantined + {_count(row, 'events_held_back')} held back + "
                f"{_count(row, 'events_duplicate')} duplicate")
    return f"{ingest}; {validate}"


def format_runs(rows: list[Mapping[str, Any]], tz: str = REPORTING_TIMEZONE) -> str:
    zone = ZoneInfo(tz)
    if not rows:
        return "Pipeline runs: none recorded yet in ops_pipeline_runs."
    cells = []
    for r in rows:
        lag = r.get("consumer_lag") or {}
        cells.append((_local(r.get("started_at"), zone), r["dag_id"], r["state"], ",".join(r.get("periods") or []) or "-",
                      str(r.get("events_in") or 0), str(r.get("events_accepted") or 0),
                      str(r.get("events_quarantined") or 0), str(r.get("events_held_back") or 0),
                      str(r.get("events_duplicate") or 0), str(r.get("dead_letters") or 0),
                      str(sum(lag.values())) if lag else "-", f"{(r.get('duration_s') or 0):.0f}s", r["run_id"]))
    header, rule, *body = format_rows(RUN_COLUMNS, cells)
    lines = [f"Pipeline runs (ops_pipeline_runs, latest {len(rows)}; times {tz})", header, rule]
    for r, line in zip(rows, body):
        versions = " ".join(f"{t}@{v}" for t, v in sorted((r.get("delta_versions") or {}).items()))
        lines.append(line)
        lines.append(f"{'':18}counts: {counts_text(r)}")
        lines.append(f"{'':18}lag per partition: {_lag_text(r.get('consumer_lag') or {})}")
        lines.append(f"{'':18}Delta versions written: {versions or 'none'}")
    return "\n".join(lines)


FRESHNESS_COLUMNS = (Column("code", 4), Column("province", 22), Column("last event (bronze)", 19),
                     Column("age", 8, True), Column("events", 6, True), Column("last accepted (silver)", 22),
                     Column("period", 7), Column("age", 8, True))


def format_freshness(rows: list[Mapping[str, Any]], now: datetime, tz: str = REPORTING_TIMEZONE) -> str:
    zone = ZoneInfo(tz)
    cells = [(r["province_code"] or "?", r.get("province_name") or "", _local(r.get("last_event_at"), zone),
              _age(r.get("last_event_at"), now), str(r.get("events") or 0), _local(r.get("last_accepted_at"), zone),
              r.get("last_accepted_period") or "-", _age(r.get("last_accepted_at"), now)) for r in rows]
    return "\n".join([f"Freshness per province (times {tz}, now {_local(now, zone)})",
                      *format_rows(FRESHNESS_COLUMNS, cells)])


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    now = datetime.now(timezone.utc)
    print(format_runs(recent_runs(settings, args.runs, args.dag), REPORTING_TIMEZONE))
    stream = read_health(health_path(settings))
    if stream is not None:  # where the streaming mode runs (or ran)
        judged = verdict(stream, now, document_alive(stream), settings.stream_max_silence_s, settings.stream_max_lag)
        print("\n" + "\n".join(status_lines(stream, judged)))
    try:
        lag = ingest_lag(settings)
        print(f"\nConsumer lag now (topic end offsets - ingest checkpoint): {_lag_text(lag)}; total {sum(lag.values())}")
    except Exception as exc:
        print(f"\nConsumer lag now: not available ({type(exc).__name__}: {exc})")
    versions = lake_versions(settings)
    if versions:
        print("Delta tables now: " + " ".join(f"{t}@{v}" for t, v in versions.items()))
    if not args.no_freshness:
        print()
        print(format_freshness(freshness(settings, now.astimezone(ZoneInfo(REPORTING_TIMEZONE)).date()), now,
                               REPORTING_TIMEZONE))
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``status`` to the ``readiness`` command's subparsers."""
    parser = subparsers.add_parser("status", help="pipeline run health (ops_pipeline_runs), consumer lag and "
                                                  "freshness per province")
    parser.add_argument("--runs", type=int, default=10, help="how many recent runs to show (default 10)")
    parser.add_argument("--dag", default=None, help="only runs of this DAG id")
    parser.add_argument("--no-freshness", action="store_true", help="skip the per-province freshness table")
    parser.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m readiness.orchestration.run_health [status options]`` (until the CLI wires ``readiness status``)."""
    parser = argparse.ArgumentParser(prog="readiness")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv if argv is not None else (sys.argv[1:] or ["status"]))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
