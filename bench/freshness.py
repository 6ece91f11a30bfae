"""Freshness in the scheduled mode: seconds from publishing a report to its province's row changing
in the gold tables, with the real Airflow services running the DAGs.

:class:`readiness.dev.airflow.AirflowServices` (api-server, scheduler with the LocalExecutor,
dag-processor; SQLite metadata database under the bench work dir) runs ``readiness_ingest`` on the
cron ``READINESS_INGEST_CRON="* * * * *"`` (every minute instead of the default five) and its asset
event triggers ``readiness_refresh_changed`` (validate + aggregate of the changed periods). Every
other DAG is paused. The topic holds one national period; after the cold start (the first ingest +
refresh publishes it), each sample waits a random time in ``[0, interval_s)``, publishes a corrected
revision of one unit's report that moves its province's ``computers_per_100_staff`` numerator sum,
and finds the first Delta version of ``gold_indicator_values`` that shows the new value.

Measured per sample (all from the Delta log and the Airflow REST API, not from polling times):
publish -> gold commit (the Delta commit timestamp), publish -> end of the refresh run that wrote
it, and where the seconds went: the ingest run that picked the event up (its cron tick and start
relative to the publish, its duration), its asset event, the refresh run's start and duration.

Baseline, same run: Airflow stopped, one more correction published, then one direct in-process
``ingest_reports`` + ``validate_period`` + ``aggregate_period`` of the period on the same lake in
the bench process's Spark session (already started; its start is reported separately and excluded):
the pipeline's own work, with no scheduling in front of it. The ratio is median scheduled publish ->
gold commit over the baseline's publish -> commit of the same table (``baseline_s``).

    python -m bench.run --only freshness [--quick] [--samples N] [--interval S]
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from bench.common import AS_OF, SEED, encode_batch, ensure_topic, free_port, median, send_batch, with_topic
from readiness.contracts.producer import ReportProducer
from readiness.dev.simulate import SimulationProfile, simulate
from readiness.domain.bases import AS_REPORTED
from readiness.domain.reference import indicator_by_code
from readiness.lake.log import table_version
from readiness.settings import Secret, Settings

INDICATOR = "computers_per_100_staff"


def _clean(report: dict) -> bool:
    """A report every row rule accepts (so its correction is accepted too) that reports INDICATOR."""
    catalogue = indicator_by_code()
    codes = [v["indicator_code"] for v in report["values"]]
    if INDICATOR not in codes or len(codes) != len(set(codes)):
        return False
    for v in report["values"]:
        ind = catalogue.get(v["indicator_code"])
        if ind is None or (v["numerator"] or 0) < 0 or (v["denominator"] or 0) < 0:
            return False
        if ind.numerator_at_most_denominator and v["numerator"] is not None and v["numerator"] > v["denominator"]:
            return False
    return True


def corrections(reports: list[dict], count: int, rng: random.Random) -> list[dict]:
    """One correction per province (distinct provinces), a higher revision than any simulated,
    submitted a day after the original (still inside the period's data window)."""
    by_province: dict[str, dict] = {}
    for r in reports:
        if r["revision"] == 0 and _clean(r):
            by_province.setdefault(r["province_code"], r)
    chosen = rng.sample(sorted(by_province), count)
    out = []
    for n, province in enumerate(chosen):
        original = by_province[province]
        fixed = {**original, "values": [dict(v) for v in original["values"]]}
        fixed["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        fixed["revision"] = 100 + n
        fixed["submitted_at"] = original["submitted_at"] + timedelta(days=1)
        for v in fixed["values"]:
            if v["indicator_code"] == INDICATOR:
                # One computer fewer (or more): stays inside the catalogue's range, moves the province sum.
                v["numerator"] = v["numerator"] - 1.0 if v["numerator"] >= 1 else v["numerator"] + 1.0
        out.append(fixed)
    return out




INGEST_DAG, REFRESH_DAG = "readiness_ingest", "readiness_refresh_changed"
#: Every DAG of dags/; all but the ingest and the refresh are paused for the benchmark.
DAG_IDS = [INGEST_DAG, REFRESH_DAG, "readiness_period_close", "readiness_period_pipeline", "readiness_reprocess"]
#: The ingest cadence in the benchmark (the deployment default is every 5 minutes).
INGEST_CRON = "* * * * *"
BASIS = AS_REPORTED


# -- reading the lake and the Airflow REST API -----------------------------------------------------

def _ts(value: str | None) -> float | None:
    """Epoch seconds of an ISO timestamp from the REST API (``...Z``), or None."""
    return None if not value else datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _commit_time(table: Path, version: int) -> float:
    """The timestamp Delta gives ``version`` in its history: the commit file's modification time."""
    return (table / "_delta_log" / f"{version:020d}.json").stat().st_mtime


def _gold_values(spark, settings: Settings, period: str, version: int) -> dict[str, float]:
    """province -> ``numerator_sum`` of INDICATOR (basis as_reported) at a Delta version of gold."""
    from pyspark.sql import functions as F

    from readiness.lake import store
    from readiness.lake.tables import GOLD_VALUES

    rows = (store.read(spark, settings, GOLD_VALUES, version)
            .where((F.col("period_id") == period) & (F.col("basis") == BASIS)
                   & (F.col("indicator_code") == INDICATOR))
            .select("province_code", "numerator_sum").collect())
    return {r["province_code"]: r["numerator_sum"] for r in rows}


def _check_alive(services, what: str) -> None:
    dead = services.exited()
    if dead:
        raise RuntimeError(f"Airflow service(s) {', '.join(dead)} exited while {what}:\n{services.log_tail()}")


def _check_no_failed_runs(services, what: str) -> None:
    for dag_id in (INGEST_DAG, REFRESH_DAG):
        failed = [r for r in services.runs(dag_id) if r["state"] == "failed"]
        if failed:
            run = failed[0]
            raise RuntimeError(f"{dag_id} run {run['dag_run_id']} failed while {what}; tasks: "
                               f"{services.task_states(dag_id, run['dag_run_id'])}; task logs under "
                               f"{services.settings.airflow_home / 'logs'}\n{services.log_tail()}")


def _busy(services, dag_id: str, states: tuple[str, ...] = ("queued", "running")) -> list[dict]:
    return [r for r in services.runs(dag_id) if r["state"] in states]


@contextlib.contextmanager
def _own_metadata_db():
    """The services get the SQLite database under their AIRFLOW_HOME, whatever the caller's
    environment names (as the engine test does): both variables are hidden while they run."""
    from readiness.dev.airflow import AIRFLOW_DB_ENV, DB_URL_ENV

    saved = {k: os.environ.pop(k) for k in (DB_URL_ENV, AIRFLOW_DB_ENV) if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


# -- phases ------------------------------------------------------------------------------------------

def _cold_start(services, gold: Path, deadline: float) -> tuple[dict, dict]:
    """Until the schedule's first ingest and the refresh it triggered have published gold; returns
    (the first ingest run, the first refresh run) as the REST API describes them."""
    while True:
        _check_alive(services, "waiting for the first ingest + refresh")
        _check_no_failed_runs(services, "waiting for the first ingest + refresh")
        refreshes = services.runs(REFRESH_DAG)
        done = [r for r in refreshes if r["state"] == "success"]
        if done and not _busy(services, REFRESH_DAG) and table_version(gold) is not None:
            ingests = sorted((r for r in services.runs(INGEST_DAG) if r["start_date"]), key=lambda r: r["start_date"])
            return ingests[0], min(done, key=lambda r: r["start_date"])
        if time.time() > deadline:
            raise TimeoutError(
                f"the first scheduled ingest + refresh did not publish gold in time; ingest runs: "
                f"{[(r['dag_run_id'], r['state']) for r in services.runs(INGEST_DAG)]}, refresh runs: "
                f"{[(r['dag_run_id'], r['state']) for r in refreshes]}\n{services.log_tail()}")
        time.sleep(3)


def _sample(services, spark, topic: Settings, gold: Path, period: str, fix: dict, values: dict[str, float],
            n: int, timeout: float) -> dict:
    """Publish ``fix`` and follow it to gold: the Delta version that first shows the new value, the
    refresh run that wrote it, the asset event that triggered that run and the ingest run behind it."""
    province = fix["province_code"]
    before = values.get(province)
    checked = table_version(gold)
    published = time.time()
    with ReportProducer(topic) as producer:
        sent = producer.publish_reports([fix])
    acked = time.time()
    if sent.not_acknowledged:
        raise RuntimeError(f"sample {n + 1}: correction not acknowledged: {sent.failures}")
    deadline = published + timeout
    hit = None
    while hit is None:
        _check_alive(services, f"waiting for sample {n + 1}")
        _check_no_failed_runs(services, f"waiting for sample {n + 1}")
        latest = table_version(gold)
        # Read new versions once no refresh is queued or running, so that this process's Spark
        # reads do not compete for the cores with the run being measured (the figures come from
        # the Delta log and the REST API, not from when this loop notices).
        if latest is not None and latest > checked and not _busy(services, REFRESH_DAG):
            for version in range(checked + 1, latest + 1):
                value = _gold_values(spark, topic, period, version).get(province)
                checked = version
                if value != before:
                    hit = (version, _commit_time(gold, version), value)
                    break
            continue
        if time.time() > deadline:
            raise TimeoutError(
                f"sample {n + 1} (province {province}): no gold_indicator_values version showing the correction "
                f"within {timeout:.0f} s of the publish (latest version {latest}, checked up to {checked}); "
                f"ingest runs: {[(r['dag_run_id'], r['state']) for r in services.runs(INGEST_DAG)[:5]]}, "
                f"refresh runs: {[(r['dag_run_id'], r['state']) for r in services.runs(REFRESH_DAG)[:5]]}")
        time.sleep(2)
    version, commit, new_value = hit

    writer = next((r for r in services.runs(REFRESH_DAG) if r["start_date"] and r["end_date"]
                   and _ts(r["start_date"]) <= commit <= _ts(r["end_date"])), None)
    if writer is None:
        raise RuntimeError(f"sample {n + 1}: no finished {REFRESH_DAG} run spans the gold commit "
                           f"(version {version} at {datetime.fromtimestamp(commit).isoformat()})")
    refresh_id = writer["dag_run_id"]
    events = services.api("GET", f"{services.run_path(REFRESH_DAG, refresh_id)}/upstreamAssetEvents")["asset_events"]
    events = [e for e in events if e.get("source_dag_id") == INGEST_DAG and e.get("source_run_id")]
    if not events:
        raise RuntimeError(f"sample {n + 1}: refresh run {refresh_id} has no asset event from {INGEST_DAG}")
    ingests = []
    for event in events:
        done = services.wait_for_run(INGEST_DAG, event["source_run_id"], timeout=timeout)
        ingests.append((event, services.run(INGEST_DAG, event["source_run_id"]),
                        (done.xcom.get("ingest_reports") or {}).get("events_in")))
    # The ingest run that read the correction: the one (normally the only one) that read events.
    event, ingest, events_in = max(ingests, key=lambda x: (bool(x[2]), _ts(x[0]["timestamp"])))
    refreshed = services.xcom(REFRESH_DAG, refresh_id, "refresh_period", 0) or {}
    i_start, i_end = _ts(ingest["start_date"]), _ts(ingest["end_date"])
    r_start, r_end = _ts(writer["start_date"]), _ts(writer["end_date"])
    announced = _ts(event["timestamp"])
    return {
        "sample": n, "province": province, "published": published, "ack_s": acked - published,
        "old_value": before, "new_value": new_value, "gold_version": version,
        "refresh_gold_version": (refreshed.get("delta_versions") or {}).get("gold_indicator_values"),
        "to_gold_commit_s": commit - published, "to_refresh_end_s": r_end - published,
        "ingest_run_id": ingest["dag_run_id"], "ingest_events_in": events_in,
        "ingest_tick_s": _ts(ingest["run_after"]) - published, "ingest_start_s": i_start - published,
        "ingest_run_s": i_end - i_start, "ingest_to_event_s": announced - i_start,
        "asset_event_s": announced - published, "asset_events": len(events),
        "refresh_run_id": refresh_id, "refresh_start_s": r_start - published, "trigger_gap_s": r_start - announced,
        "refresh_run_s": r_end - r_start, "refresh_to_commit_s": commit - r_start,
        "commit_to_refresh_end_s": r_end - commit,
    }


def _stop_scheduling(services, timeout: float, log) -> None:
    """Pause the ingest and let running runs finish, so stopping kills nothing mid-write."""
    services.pause(INGEST_DAG)
    deadline = time.time() + timeout
    while _busy(services, INGEST_DAG, ("running",)) or _busy(services, REFRESH_DAG, ("running",)):
        if time.time() > deadline or services.exited():
            log(f"  runs still running after {timeout:.0f} s; stopping Airflow anyway")
            return
        time.sleep(2)


def _baseline(spark, topic: Settings, gold: Path, period: str, fix: dict, values: dict[str, float]) -> dict:
    """One direct ingest + validate + aggregate in this process, after publishing ``fix``."""
    from readiness.pipeline.aggregate import aggregate_period
    from readiness.pipeline.ingest import ingest_reports
    from readiness.pipeline.validate import validate_period

    province = fix["province_code"]
    before = values.get(province)
    published = time.time()
    with ReportProducer(topic) as producer:
        sent = producer.publish_reports([fix])
    if sent.not_acknowledged:
        raise RuntimeError(f"baseline correction not acknowledged: {sent.failures}")
    t0 = time.time()
    ingested = ingest_reports(topic)
    t1 = time.time()
    validate_period(topic, period)
    t2 = time.time()
    aggregate_period(topic, period)
    t3 = time.time()
    version = table_version(gold)
    after = _gold_values(spark, topic, period, version).get(province)
    if after == before:
        raise RuntimeError(f"the direct run did not change province {province}'s gold value ({before}); "
                           f"ingest counts {ingested}")
    return {"province": province, "old_value": before, "new_value": after, "gold_version": version,
            "events_in": ingested.get("events_in"), "ingest_s": t1 - t0, "validate_s": t2 - t1,
            "aggregate_s": t3 - t2, "pipeline_s": t3 - t0, "publish_to_start_s": t0 - published,
            "to_gold_commit_s": _commit_time(gold, version) - published}


def run(settings: Settings, work_root: Path, samples: int = 4, interval_s: float = 60.0,
        sample_timeout_s: float = 900.0, log=print, cold_timeout_s: float = 1800.0,
        start_timeout_s: float = 600.0) -> dict:
    """Measure ``samples`` publishes through the scheduled mode, then the baseline (see the module doc).

    ``interval_s``: each publish waits a random time in ``[0, interval_s)`` first. Timeouts raise:
    ``start_timeout_s`` for the services to answer and load the DAGs, ``cold_timeout_s`` for the
    first ingest + refresh, ``sample_timeout_s`` per sample (publish to gold) and for the baseline.
    """
    from pyspark.sql import SparkSession

    from readiness.dev.airflow import AirflowServices
    from readiness.lake.spark import get_spark
    from readiness.lake.tables import GOLD_VALUES

    work = work_root / "freshness"
    work.mkdir(parents=True, exist_ok=True)
    # The services get the SQLite database under their own AIRFLOW_HOME (see _own_metadata_db).
    topic = dataclasses.replace(with_topic(settings, "freshness", var_dir=work / "var"), airflow_db_url=Secret())
    ensure_topic(topic)
    gold = Path(topic.table_path(GOLD_VALUES))
    batch = simulate(SEED, AS_OF, SimulationProfile(quarters=1, half_years=0, years=0))
    period = batch.periods[0].id
    send_batch(topic, *encode_batch(batch), timeout=60.0)
    rng = random.Random(SEED)
    fixes = corrections(batch.reports, samples + 1, rng)  # the last one is the baseline's
    log(f"  {len(batch.reports):,} reports of {period} on {topic.topic_reports}; starting Airflow "
        f"(READINESS_INGEST_CRON={INGEST_CRON!r}) with AIRFLOW_HOME {topic.airflow_home}")

    data: dict = {"mode": "scheduled", "period": period, "interval_s": interval_s, "ingest_cron": INGEST_CRON,
                  "reports": len(batch.reports), "samples": []}
    services = spark = None
    own_spark = False
    with _own_metadata_db():
        try:
            services = AirflowServices(topic, port=free_port(), log_server_port=free_port(),
                                       extra_env={"READINESS_INGEST_CRON": INGEST_CRON})
            started = time.time()
            services.start(timeout=start_timeout_s)
            data["airflow_start_s"] = time.time() - started
            services.wait_for_dags(DAG_IDS, timeout=start_timeout_s)
            data["dags_loaded_s"] = time.time() - started
            listed = [d["dag_id"] for d in services.api("GET", "/dags?limit=100")["dags"]]
            data["paused"] = sorted(d for d in set(listed) | set(DAG_IDS) if d not in (INGEST_DAG, REFRESH_DAG))
            for dag_id in data["paused"]:
                services.pause(dag_id)
            log(f"  services up in {data['airflow_start_s']:.0f} s, DAGs loaded at {data['dags_loaded_s']:.0f} s; "
                f"paused {', '.join(data['paused'])}")

            first_ingest, first_refresh = _cold_start(services, gold, started + cold_timeout_s)
            data["cold"] = {
                "to_refresh_end_s": _ts(first_refresh["end_date"]) - started,
                "ingest_run_s": _ts(first_ingest["end_date"]) - _ts(first_ingest["start_date"])
                if first_ingest["end_date"] else None,
                "refresh_run_s": _ts(first_refresh["end_date"]) - _ts(first_refresh["start_date"])}
            log(f"  cold start: first ingest + refresh published gold {data['cold']['to_refresh_end_s']:.0f} s "
                f"after the services started (ingest run {data['cold']['ingest_run_s'] or 0:.0f} s, "
                f"refresh run {data['cold']['refresh_run_s']:.0f} s)")

            own_spark = SparkSession.getActiveSession() is None
            t = time.time()
            spark = get_spark(topic)
            data["spark_start_s"] = time.time() - t if own_spark else None
            values = _gold_values(spark, topic, period, table_version(gold))
            if len(values) < 2:
                raise RuntimeError(f"gold_indicator_values has {len(values)} province rows for {period} after the "
                                   "first refresh")

            for n, fix in enumerate(fixes[:samples]):
                time.sleep(rng.uniform(0, interval_s))
                sample = _sample(services, spark, topic, gold, period, fix, values, n, sample_timeout_s)
                values[fix["province_code"]] = sample["new_value"]
                data["samples"].append(sample)
                log(f"  sample {n + 1}/{samples}: province {sample['province']}, publish -> gold commit "
                    f"{sample['to_gold_commit_s']:.1f} s, -> refresh run end {sample['to_refresh_end_s']:.1f} s "
                    f"(ingest run started {sample['ingest_start_s']:+.1f} s, took {sample['ingest_run_s']:.1f} s; "
                    f"refresh started {sample['trigger_gap_s']:.1f} s after the asset event, took "
                    f"{sample['refresh_run_s']:.1f} s)")
            data["ingest_runs"] = len(services.runs(INGEST_DAG))
            data["refresh_runs"] = len(services.runs(REFRESH_DAG))

            _stop_scheduling(services, sample_timeout_s, log)
            services.stop()
            services = None
            log("  Airflow stopped; baseline: direct ingest + validate + aggregate in this process")
            data["baseline"] = _baseline(spark, topic, gold, period, fixes[samples], values)
            b = data["baseline"]
            log(f"  baseline: publish -> gold commit {b['to_gold_commit_s']:.1f} s; the three calls "
                f"{b['pipeline_s']:.1f} s (ingest {b['ingest_s']:.1f}, validate {b['validate_s']:.1f}, "
                f"aggregate {b['aggregate_s']:.1f}); Spark session start (excluded) "
                f"{data['spark_start_s'] if data['spark_start_s'] is not None else float('nan'):.1f} s")
        finally:
            try:
                if services is not None:
                    services.stop()
            finally:
                if spark is not None and own_spark:
                    spark.stop()

    done = data["samples"]
    for key in ("to_gold_commit_s", "to_refresh_end_s", "ingest_tick_s", "ingest_start_s", "ingest_run_s",
                "ingest_to_event_s", "trigger_gap_s", "refresh_run_s", "refresh_to_commit_s",
                "commit_to_refresh_end_s"):
        data[f"median_{key}"] = median([s[key] for s in done]) if done else None
    data["min_to_gold_commit_s"] = min(s["to_gold_commit_s"] for s in done) if done else None
    data["max_to_gold_commit_s"] = max(s["to_gold_commit_s"] for s in done) if done else None
    # Like for like: the baseline's publish -> commit of the same gold table (aggregate_period goes on
    # to write the other gold tables after it; pipeline_s, all three calls, is reported beside it).
    data["baseline_s"] = data["baseline"]["to_gold_commit_s"]
    data["ratio"] = data["median_to_gold_commit_s"] / data["baseline_s"] if done else None
    return data
