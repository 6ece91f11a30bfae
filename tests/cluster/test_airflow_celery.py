"""Airflow's CeleryExecutor on the package's cluster (PostgreSQL metadata, Redis, two Celery workers,
the Spark standalone cluster): a Celery worker lost while it runs a task.

The services answer (the scheduler and DAG processor healthy, both workers answering a ping). Then the
older period of the package's national run is recomputed under a fault: its silver and gold tables are
removed (so the retried tasks must write them again: a rerun over existing tables would leave them as
they were whatever the fault did), ``readiness_period_pipeline`` is triggered, and the Celery worker
running ``validate_batch`` is SIGKILLed by pid with the rest of its process group. The scheduler
notices the missing heartbeats, the task is retried on the other worker (try 2), the run succeeds and
the period's gold equals the national run's row by row.
"""
from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from readiness.dev.cluster.airflow import AirflowCluster
from readiness.dev.daemon import pid_alive
from readiness.lake.tables import GOLD_PREFIX, GOLD_PUBLICATIONS, GOLD_TABLES, SILVER_PREFIX
from support.faults import canonical_rows, record_fault, snapshot

pytestmark = pytest.mark.slow

DAG_ID = "readiness_period_pipeline"
KILLED_TASK = "validate_batch"
RUN_TIMEOUT_S = 1500


def test_the_airflow_services_and_both_celery_workers_answer(cluster):
    airflow = cluster.airflow
    assert all(worker.running() for worker in airflow.workers)
    assert sorted(airflow.ping_workers()) == sorted(airflow.celery_name(i) for i in (1, 2))
    status = airflow.status()
    assert status["health"]["scheduler"] == "healthy" and status["health"]["dag_processor"] == "healthy"


def _running_try(airflow: AirflowCluster, run_id: str, timeout: float) -> dict:
    """Until ``KILLED_TASK`` runs on a worker with its task process started (pid and host recorded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ti = {t["task_id"]: t for t in airflow.api.task_instances(DAG_ID, run_id)}.get(KILLED_TASK)
        if ti and ti["state"] == "running" and ti.get("pid") and ti.get("hostname"):
            return ti
        assert airflow.api.run(DAG_ID, run_id)["state"] in ("queued", "running"), "the run ended first"
        time.sleep(1)
    raise AssertionError(f"{KILLED_TASK} did not start running within {timeout:.0f} s")


def test_lost_celery_worker_task_is_retried_on_the_other_worker(cluster, national):
    airflow, period_id = cluster.airflow, national.periods[0]
    settings = airflow.settings
    undisturbed = {name: canonical_rows([r for r in national.gold[name] if r["period_id"] == period_id])
                   for name in GOLD_TABLES}
    for table in settings.lake_dir.iterdir():  # recompute the period from bronze (see the module's doc)
        if table.name.startswith((SILVER_PREFIX, GOLD_PREFIX)) or table.name == GOLD_PUBLICATIONS:
            shutil.rmtree(table)
    triggered = time.monotonic()
    run_id = airflow.api.trigger(DAG_ID, {"period_id": period_id})
    first = _running_try(airflow, run_id, timeout=RUN_TIMEOUT_S)
    time.sleep(5)  # well into the task: its Spark session is starting
    lost = airflow.worker_for_host(first["hostname"])
    killed = airflow.kill_worker(lost)
    killed_at = time.monotonic()
    if pid_alive(first["pid"]):  # the task's own process, from the task instance
        os.kill(first["pid"], signal.SIGKILL)
    assert not lost.running()
    print(f"\nkilled {lost.name} (pids {killed}) running {KILLED_TASK} try {first['try_number']} "
          f"(task pid {first['pid']})")

    detected_at = retry_started_at = None
    deadline = killed_at + 600
    while time.monotonic() < deadline:
        tries = airflow.api.task_tries(DAG_ID, run_id, KILLED_TASK)
        if detected_at is None and tries[0]["state"] not in ("running", None):
            detected_at = time.monotonic()
        if len(tries) > 1 and tries[1]["state"] == "running" and retry_started_at is None:
            retry_started_at = time.monotonic()
        if len(tries) > 1 and tries[1]["state"] in ("success", "failed"):
            break
        time.sleep(1)
    result = airflow.api.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT_S)
    retry_done_at = time.monotonic()
    tries = airflow.api.task_tries(DAG_ID, run_id, KILLED_TASK)
    figures = {
        "lost_task_detected_s": None if detected_at is None else round(detected_at - killed_at, 1),
        "retry_started_after_kill_s": None if retry_started_at is None else round(retry_started_at - killed_at, 1),
        "retry_duration_s": None if retry_started_at is None else round(retry_done_at - retry_started_at, 1),
        "run_total_s": round(retry_done_at - triggered, 1),
    }
    print(f"worker loss: {figures}; tries: "
          f"{[(t['try_number'], t['state'], t['hostname']) for t in tries]}")

    assert result.state == "success", (result.task_states, airflow.api.log_tail())
    assert [t["try_number"] for t in tries] == [first["try_number"], first["try_number"] + 1]
    assert tries[0]["state"] != "success" and tries[1]["state"] == "success"
    assert tries[1]["hostname"] != first["hostname"] and tries[1]["hostname"].startswith("worker-")
    assert figures["lost_task_detected_s"] is not None and figures["lost_task_detected_s"] < 120
    assert {name: snapshot(settings, name) for name in GOLD_TABLES} == undisturbed
    record_fault(fault="cluster: Celery worker SIGKILL while it runs validate_batch",
                 injected=f"SIGKILL of {lost.name}'s process group (pids {killed})", runs=1,
                 lost=0, doubled=0, **figures)
    lost.start()  # the package's cluster stays whole
    lost.wait_ready(120)
