"""Freshness in the streaming mode: seconds from publishing a report to the gold commit that shows it,
with ``readiness stream`` running as its own process, over due-date bursts.

The topic holds one national period; the service starts on it (its first batch publishes the period:
the cold start). Then ``bursts`` times, after a random wait in ``[0, interval_s)``, ``burst_size``
provinces publish a correction each at the same moment (one producer, all sent before any is awaited:
a due date's last hour), every correction moving its province's ``computers_per_100_staff`` numerator
sum. A sample's time is from just before its burst was sent to the commit timestamp (Delta log) of the
first version of ``gold_indicator_values`` that shows its province's new value; the gold versions are
read with ``deltalake``, so this process runs no Spark beside the service. Also kept: each batch's
counts and seconds (``ops_pipeline_runs``, ``dag_id`` ``readiness_stream``), the service's start-up, and
how long SIGTERM took to stop it.

    python -m bench.run --only freshness,streaming [--bursts 3 --burst-size 10]

Run with ``freshness`` in the same run to set it against the scheduled mode.
"""
from __future__ import annotations

import math
import os
import random
import signal
import statistics
import subprocess
import time
from datetime import datetime
from pathlib import Path

from bench.common import AS_OF, PYTHON, SEED, encode_batch, ensure_topic, median, send_batch, with_topic
from bench.freshness import BASIS, INDICATOR, corrections
from readiness.contracts.producer import ReportProducer
from readiness.dev.airflow.processes import kill_group
from readiness.dev.simulate import SimulationProfile, simulate
from readiness.lake.log import table_version
from readiness.lake.tables import GOLD_VALUES, OPS_RUNS
from readiness.orchestration.stream_health import health_path, read_health
from readiness.settings import PROJECT_ROOT, Settings, settings_env
from readiness.streaming.service import STREAM_DAG_ID

STOP_BOUND_S = 300.0


def _gold_values(gold: Path, period: str, version: int) -> dict[str, float]:
    """province -> ``numerator_sum`` of INDICATOR at a version of gold (delta-rs, no Spark)."""
    from deltalake import DeltaTable

    rows = DeltaTable(str(gold), version=version).to_pyarrow_table(
        columns=["period_id", "basis", "indicator_code", "province_code", "numerator_sum"]).to_pylist()
    return {r["province_code"]: r["numerator_sum"] for r in rows
            if r["period_id"] == period and r["basis"] == BASIS and r["indicator_code"] == INDICATOR}


def _commit_time(gold: Path, version: int) -> float:
    return (gold / "_delta_log" / f"{version:020d}.json").stat().st_mtime


def _percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in (0, 1]) of ``values``."""
    ranked = sorted(values)
    return ranked[max(0, math.ceil(share * len(ranked)) - 1)]


def _wait(proc: subprocess.Popen, health: Path, what: str, ready, timeout: float) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the streaming service exited ({proc.returncode}) waiting for {what}")
        document = read_health(health) or {}
        if document.get("pid") == proc.pid and ready(document):
            return document
        time.sleep(0.2)
    raise TimeoutError(f"no {what} within {timeout:.0f} s (health {read_health(health)})")


def _follow(gold: Path, period: str, pending: dict[str, tuple[float, float | None]], checked: int,
            timeout: float, proc: subprocess.Popen) -> tuple[dict[str, tuple[int, float, float]], int]:
    """Read each new gold version until every pending province (``province -> (published, old value)``)
    shows a new value; ``province -> (version, commit time, new value)`` and the last version read."""
    hits: dict[str, tuple[int, float, float]] = {}
    deadline = time.time() + timeout
    while len(hits) < len(pending):
        if proc.poll() is not None:
            raise RuntimeError(f"the streaming service exited ({proc.returncode}) with samples pending")
        latest = table_version(gold)
        if latest is not None and latest > checked:
            for version in range(checked + 1, latest + 1):
                values = _gold_values(gold, period, version)
                for province, (_, before) in pending.items():
                    if province not in hits and values.get(province) != before:
                        hits[province] = (version, _commit_time(gold, version), values[province])
                checked = version
            continue
        if time.time() > deadline:
            raise TimeoutError(f"{len(pending) - len(hits)} of {len(pending)} corrections not in gold within "
                               f"{timeout:.0f} s (checked up to version {checked})")
        time.sleep(0.2)
    return hits, checked


def run(settings: Settings, work_root: Path, bursts: int = 3, burst_size: int = 10, interval_s: float = 30.0,
        sample_timeout_s: float = 600.0, cold_timeout_s: float = 1200.0, log=print) -> dict:
    """Start the service on one national period, measure ``bursts`` x ``burst_size`` samples, stop it."""
    work = work_root / "streaming"
    work.mkdir(parents=True, exist_ok=True)
    topic = with_topic(settings, "streaming", var_dir=work / "var")
    ensure_topic(topic)
    gold = Path(topic.table_path(GOLD_VALUES))
    health = health_path(topic)
    batch = simulate(SEED, AS_OF, SimulationProfile(quarters=1, half_years=0, years=0))
    period = batch.periods[0].id
    send_batch(topic, *encode_batch(batch), timeout=60.0)
    rng = random.Random(SEED)
    fixes = corrections(batch.reports, bursts * burst_size, rng)
    data: dict = {"mode": "streaming", "period": period, "reports": len(batch.reports), "bursts": bursts,
                  "burst_size": burst_size, "interval_s": interval_s, "trigger_s": topic.stream_trigger_s,
                  "samples": []}
    log(f"  {len(batch.reports):,} reports of {period} on {topic.topic_reports}; starting readiness stream "
        f"(trigger {topic.stream_trigger_s:g} s)")
    started = time.time()
    with open(work / "stream.log", "wb") as out:
        proc = subprocess.Popen([PYTHON, "-m", "readiness.cli", "stream"], cwd=PROJECT_ROOT, stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, **settings_env(topic)},
                                start_new_session=True)
    try:
        _wait(proc, health, "the running state", lambda h: h.get("state") == "running", cold_timeout_s)
        data["start_s"] = time.time() - started
        cold = _wait(proc, health, "the first gold commit", lambda h: h.get("last_gold_commit")
                     and h.get("in_batch") is None, cold_timeout_s)
        data["cold_s"] = time.time() - started
        last = cold["last_batch"]
        data["cold_batch_s"] = (datetime.fromisoformat(last["ended_at"])
                                - datetime.fromisoformat(last["started_at"])).total_seconds()
        log(f"  service running after {data['start_s']:.1f} s; the period in gold after {data['cold_s']:.1f} s")
        checked = table_version(gold) or 0
        values = _gold_values(gold, period, checked)
        for b in range(bursts):
            time.sleep(rng.uniform(0, interval_s))
            group = fixes[b * burst_size:(b + 1) * burst_size]
            published = time.time()
            with ReportProducer(topic) as producer:
                sent = producer.publish_reports(group)
            acked = time.time()
            if sent.not_acknowledged:
                raise RuntimeError(f"burst {b + 1}: {sent.not_acknowledged} corrections not acknowledged")
            pending = {f["province_code"]: (published, values.get(f["province_code"])) for f in group}
            hits, checked = _follow(gold, period, pending, checked, sample_timeout_s, proc)
            for province, (version, commit, value) in sorted(hits.items()):
                values[province] = value
                data["samples"].append({"burst": b, "province": province, "published": published,
                                        "ack_s": acked - published, "gold_version": version,
                                        "to_gold_commit_s": commit - published})
            times = [commit - published for _, commit, _ in hits.values()]
            log(f"  burst {b + 1}/{bursts}: {len(group)} provinces at once, acknowledged in {acked - published:.1f} s; "
                f"publish -> gold commit {min(times):.1f}-{max(times):.1f} s over {len({v for v, _, _ in hits.values()})} "
                f"gold version(s)")
        stopping = time.time()
        os.kill(proc.pid, signal.SIGTERM)
        data["exit_code"] = proc.wait(timeout=STOP_BOUND_S)
        data["stop_s"] = time.time() - stopping
    finally:
        if proc.poll() is None:
            kill_group(proc, grace=20)
    data["batches"] = _batches(topic, started)
    done = [s["to_gold_commit_s"] for s in data["samples"]]
    data["median_to_gold_commit_s"] = median(done)
    data["p95_to_gold_commit_s"] = _percentile(done, 0.95)
    data["min_to_gold_commit_s"], data["max_to_gold_commit_s"] = min(done), max(done)
    data["stdev_to_gold_commit_s"] = statistics.pstdev(done)
    return data


def _batches(topic: Settings, since: float) -> list[dict]:
    """The service's batches as ``ops_pipeline_runs`` has them: counts, periods, seconds."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        rows = DeltaTable(str(topic.table_path(OPS_RUNS))).to_pyarrow_table().to_pylist()
    except TableNotFoundError:
        return []
    return sorted(({"run_id": r["run_id"], "events_in": r["events_in"], "bronze_rows": r["bronze_rows"],
                    "duration_s": r["duration_s"], "periods": r["periods"], "started_at": r["started_at"].timestamp()}
                   for r in rows if r["dag_id"] == STREAM_DAG_ID and r["started_at"].timestamp() >= since - 1),
                  key=lambda r: r["started_at"])
