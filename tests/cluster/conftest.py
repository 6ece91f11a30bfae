"""One whole cluster for the cluster tests, and one national run on it.

``cluster``: three KRaft nodes, a Spark master with two workers, and Airflow's CeleryExecutor on Redis
with two workers and PostgreSQL, on free loopback ports under one var dir; started once for the
package (start-up is about a minute on two cores) and stopped after it.

``national``: ``python -m readiness.dev.cluster run`` on it (the simulated national data set, the
period pipeline DAG for the last two quarters through the Celery workers on the Spark cluster), with
the gold tables as that run left them. The node-loss tests recompute the older of the two periods
under a fault and compare with these rows (its gold does not depend on the other period's).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from readiness.dev.cluster.cli import PIPELINE_DAG, Cluster
from readiness.lake.tables import GOLD_TABLES
from readiness.settings import PROJECT_ROOT, Settings, settings_env
from support.cluster import cluster_settings
from support.faults import table_rows

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

    @property
    def periods(self) -> list[str]:
        return [r["period_id"] for r in self.runs]


def _app_ids(cluster: Cluster) -> set[str]:
    return {str(app["id"]) for app in cluster.spark.applications()}


@pytest.fixture(scope="package")
def national(cluster: Cluster) -> NationalRun:
    before = _app_ids(cluster)
    env = {**os.environ, **settings_env(cluster.settings)}
    run = subprocess.run([sys.executable, "-m", "readiness.dev.cluster", "run", "--seed", SEED], env=env,
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert run.returncode == 0, f"cluster run failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    runs = [json.loads(line) for line in run.stdout.splitlines() if line.startswith('{"dag_id": "' + PIPELINE_DAG)]
    print(f"national run on the cluster: {[(r['period_id'], r['duration_s']) for r in runs]}", flush=True)
    return NationalRun(cluster.settings, run.stdout, runs, sorted(_app_ids(cluster) - before),
                       {name: table_rows(cluster.settings, name) for name in GOLD_TABLES})
