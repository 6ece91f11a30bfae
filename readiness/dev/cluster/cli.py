"""``python -m readiness.dev.cluster up|down|status|run``: the cluster profile on this machine.

- ``up``: the three Kafka nodes (topics and ACLs), the Spark master and workers, then PostgreSQL, Redis
  and the Airflow services with their Celery workers; each service's start-up time is printed.
- ``down``: everything ``up`` started, Airflow first and Kafka last (the brokers outlive their clients).
- ``status``: each service, its pid and whether it answers.
- ``run``: ``up`` if needed, the simulated national data set published to the cluster's Kafka (once),
  the period pipeline DAG through the Celery workers for the last two closed quarters, then the
  compliance table, the rankings and the run register, as ``make run`` shows them.

All of it reads the settings of ``READINESS_ENV`` (``make cluster-*`` sets ``cluster``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from readiness.dev.cluster.airflow import AirflowCluster
from readiness.dev.cluster.kafka import KafkaCluster, KafkaClusterError
from readiness.dev.cluster.spark import SparkCluster, SparkClusterError
from readiness.dev.daemon import DaemonError
from readiness.settings import Settings, load_settings, settings_env

PIPELINE_DAG = "readiness_period_pipeline"
#: Seconds allowed for one period's pipeline DAG run on the cluster.
RUN_TIMEOUT_S = 2400.0


class ClusterError(RuntimeError):
    """A service of the cluster did not start, or a DAG run did not succeed."""


class Cluster:
    """The three engines of the cluster profile, started and stopped in dependency order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kafka = KafkaCluster(settings)
        self.spark = SparkCluster(settings)
        # The DAGs start paused: the operator unpauses the schedules; `run` triggers the period pipeline.
        self.airflow = AirflowCluster(settings, extra_env={"AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True"})

    def up(self, log: Callable[[str], None] = print) -> dict[str, float]:
        """Start what is not running yet; seconds each engine took (and ``total``)."""
        times: dict[str, float] = {}
        began = time.monotonic()
        for name, start in (("kafka", self.kafka.start), ("spark", self.spark.start), ("airflow", self.airflow.start)):
            started = time.monotonic()
            start()
            times[name] = time.monotonic() - started
            log(f"{name} up in {times[name]:.1f} s")
        times["total"] = time.monotonic() - began
        return times

    def down(self) -> None:
        self.airflow.stop()
        self.spark.stop()
        self.kafka.stop()

    def status(self) -> dict[str, Any]:
        return {"kafka": self.kafka.status(), "spark": _spark_status(self.spark),
                "airflow": self.airflow.status()}

    def run_period(self, period_id: str) -> dict[str, Any]:
        """The period pipeline DAG for ``period_id`` through the Celery workers; its result."""
        api = self.airflow.api
        api.wait_for_dags([PIPELINE_DAG])
        api.pause(PIPELINE_DAG, False)
        run_id = api.trigger(PIPELINE_DAG, {"period_id": period_id})
        result = api.wait_for_run(PIPELINE_DAG, run_id, timeout=RUN_TIMEOUT_S)
        if result.state != "success":
            raise ClusterError(f"{PIPELINE_DAG} for {period_id} ended {result.state}: {result.task_states}")
        return {"dag_id": PIPELINE_DAG, "period_id": period_id, "run_id": run_id, "state": result.state,
                "tasks": result.task_states, "duration_s": round(result.duration_s, 1)}


def _spark_status(spark: SparkCluster) -> dict[str, Any]:
    try:
        state = spark.state()
    except SparkClusterError as exc:
        return {"master": "not answering", "reason": str(exc)}
    return {"master": state.get("url"), "status": state.get("status"),
            "workers": [{"id": w.get("id"), "state": w.get("state"), "cores": w.get("cores")}
                        for w in state.get("workers", [])]}


def _readiness(settings: Settings, *argv: str) -> int:
    """One ``readiness`` command, as a user would type it, with these settings in its environment."""
    print(f"== readiness {' '.join(argv)}", flush=True)
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run([sys.executable, "-m", "readiness.cli", *argv], env=env, check=False).returncode


def run(settings: Settings, seed: int, periods: int = 2) -> int:
    """Publish the simulated data set (once), run the period pipeline DAG for the last ``periods``
    closed quarters, then print compliance, both rankings and the run register."""
    cluster = Cluster(settings)
    cluster.up()
    if _readiness(settings, "simulate", "--seed", str(seed), "--if-empty") != 0:
        return 1
    from readiness.domain.periods import REPORT_TYPES, default_calendar

    closed = default_calendar().closed_periods(REPORT_TYPES[0], datetime.now(timezone.utc), periods)
    for period_id in [p.id for p in closed]:
        print(f"== Airflow DAG {PIPELINE_DAG}, period {period_id} (Celery workers, Spark {settings.spark_master})",
              flush=True)
        print(json.dumps(cluster.run_period(period_id)), flush=True)
    for argv in (("compliance",), ("ranking", "--methodology", "ict-index"), ("ranking", "--methodology", "dti-2022"),
                 ("status", "--runs", "4")):
        if _readiness(settings, *argv) != 0:
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m readiness.dev.cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the Kafka, Spark and Airflow clusters")
    sub.add_parser("down", help="stop everything `up` started")
    sub.add_parser("status", help="each service, its pid and whether it answers")
    p_run = sub.add_parser("run", help="publish the simulated national data set and run the pipeline on the cluster")
    p_run.add_argument("--seed", type=int, default=2025)
    p_run.add_argument("--periods", type=int, default=2, help="how many of the last closed quarters to run")
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        if args.command == "up":
            times = Cluster(settings).up()
            print(f"cluster up in {times['total']:.1f} s; state under {settings.var_dir}")
        elif args.command == "down":
            Cluster(settings).down()
            print("cluster stopped")
        elif args.command == "status":
            print(json.dumps(Cluster(settings).status(), indent=2, default=str))
        else:
            return run(settings, args.seed, args.periods)
    except (ClusterError, DaemonError, KafkaClusterError, SparkClusterError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
