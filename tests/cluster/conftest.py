"""One whole cluster for the cluster tests, one national run on it under node loss, and the same
input through the single-node pipeline.

``cluster``: three KRaft nodes, a Spark master with two workers, and Airflow's CeleryExecutor on Redis
with two workers and PostgreSQL, on free loopback ports under one var dir; started once for the
package (start-up is about a minute on two cores) and stopped after it.

``national``: ``python -m readiness.dev.cluster run --periods 1`` on it (the simulated national data
set, the period pipeline DAG for the last closed quarter through the Celery workers on the Spark
cluster), disturbed as :mod:`support.node_loss` describes: a Spark worker SIGKILLed inside validate,
the Celery worker running publish SIGKILLed. Its gold tables are what that run left.

``single_node``: the same input (the same seed) through ``readiness pipeline`` on ``local[2]`` and the
single broker, undisturbed: the gold every cluster test compares with.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from readiness.dev.cluster.cli import PIPELINE_DAG, Cluster
from readiness.lake.tables import GOLD_TABLES
from readiness.ops.topics import ensure_topics
from readiness.settings import PROJECT_ROOT, Settings, settings_env
from support.cluster import cluster_settings
from support.faults import snapshot, table_rows
from support.node_loss import NodeLoss, lose_a_celery_worker, lose_a_spark_worker, restore, triggered_run

STARTUP_RECORD = PROJECT_ROOT / "var" / "reports" / "cluster_startup.jsonl"
SEED = "2025"
RUN_TIMEOUT_S = 3000


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    settings = cluster_settings(tmp_path_factory.mktemp("cluster"))
    running = Cluster(settings)
    try:
        times = running.up(log=lambda line: print(line, flush=True))
        STARTUP_RECORD.parent.mkdir(parents=True, exist_ok=True)
        with open(STARTUP_RECORD, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                     **{k: round(v, 1) for k, v in times.items()}}) + "\n")
        print(f"cluster up: {times}", flush=True)
        yield running
    finally:
        running.down()


@dataclass(frozen=True)
class NationalRun:
    settings: Settings
    stdout: str
    #: What each period's DAG run returned (run id, state, task states, duration), oldest period first.
    runs: list[dict]
    #: Spark applications the run registered at the master.
    apps: list[str]
    #: Every gold table's rows as the run left them.
    gold: dict[str, list[dict]]

    #: The Spark worker lost inside validate, and the Celery worker lost while it ran publish.
    spark_loss: NodeLoss
    celery_loss: NodeLoss

    @property
    def periods(self) -> list[str]:
        return [r["period_id"] for r in self.runs]


@pytest.fixture(scope="package")
def national(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> NationalRun:
    before = cluster.spark.application_ids()
    env = {**os.environ, **settings_env(cluster.settings)}
    log = tmp_path_factory.mktemp("national") / "run.log"
    with open(log, "w", encoding="utf-8") as out:
        run = subprocess.Popen([sys.executable, "-m", "readiness.dev.cluster", "run", "--seed", SEED, "--periods", "1"],
                               env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
        spark_loss = celery_loss = NodeLoss()
        try:
            run_id = triggered_run(cluster, lambda: run.poll() is None)
            # Side by side: each waits for its own task, so neither fault's wait can outlast the other's task.
            with ThreadPoolExecutor(max_workers=2) as faults:
                spark_fault = faults.submit(lose_a_spark_worker, cluster, run_id)
                celery_fault = faults.submit(lose_a_celery_worker, cluster, run_id)
                spark_loss, celery_loss = spark_fault.result(), celery_fault.result()
            run.wait(timeout=RUN_TIMEOUT_S)
        finally:
            if run.poll() is None:  # by the pid we started
                run.kill()
                run.wait()
            restore(cluster, spark_loss, celery_loss)
    stdout = log.read_text(encoding="utf-8")
    assert run.returncode == 0, f"cluster run failed ({run.returncode}):\n{stdout[-5000:]}"
    runs = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"dag_id": "' + PIPELINE_DAG)]
    print(f"national run on the cluster: {[(r['period_id'], r['duration_s']) for r in runs]}; "
          f"spark worker loss: {spark_loss.summary()}; celery worker loss: {celery_loss.summary()}", flush=True)
    return NationalRun(cluster.settings, stdout, runs, sorted(cluster.spark.application_ids() - before),
                       {name: table_rows(cluster.settings, name) for name in GOLD_TABLES}, spark_loss, celery_loss)


def _readiness(settings: Settings, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run([sys.executable, "-m", "readiness.cli", *argv], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=2400)


@pytest.fixture(scope="package")
def single_node(national: NationalRun, kafka_broker: Settings,
                tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Every gold table of the single-node pipeline on the national run's input, as canonical rows."""
    single = dataclasses.replace(kafka_broker, var_dir=tmp_path_factory.mktemp("single"),
                                 topic_reports="test.single_node.reports", topic_targets="test.single_node.targets")
    ensure_topics(single)
    published = _readiness(single, "simulate", "--seed", SEED)
    assert published.returncode == 0, published.stderr[-2000:]
    piped = _readiness(single, "pipeline", *national.periods)
    assert piped.returncode == 0, piped.stderr[-3000:]
    return {name: snapshot(single, name) for name in GOLD_TABLES}
