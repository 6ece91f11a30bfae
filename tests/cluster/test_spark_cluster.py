"""Losing a Spark standalone worker while validate runs on the cluster (the package's whole cluster).

The older period of the package's national run is recomputed from a copy of its bronze tables (a
lake of the test's own, so the other tests keep theirs): validate runs on the cluster; once its
application has executors with tasks on both workers, one Worker JVM is SIGKILLed by pid (its executor
must go down with it, through the executor's WorkerWatcher; if it does not, it is SIGKILLed by pid too
and the test fails). The job finishes on the other worker (Spark retries what the lost executor held),
the period publishes, and its gold equals the national run's row by row.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from readiness.dev.daemon import pid_alive
from readiness.lake.tables import BRONZE_PREFIX, GOLD_TABLES
from readiness.settings import PROJECT_ROOT, Settings
from support.faults import record_fault, run_job, snapshot

pytestmark = pytest.mark.slow

VALIDATE = [sys.executable, str(PROJECT_ROOT / "jobs" / "validate_reports.py")]
PUBLISH = [sys.executable, str(PROJECT_ROOT / "jobs" / "aggregate_readiness.py")]
# Bounds of the polls on the cluster's endpoints.
EXECUTORS_TIMEOUT_S = 240.0
EXECUTOR_EXIT_TIMEOUT_S = 30.0
# Spark's driver log line for each task attempt it lost (TaskSetManager, WARN).
LOST_TASK = re.compile(r"Lost task \S+ in stage \S+")
# ... and for each executor it lost (TaskSchedulerImpl, ERROR).
LOST_EXECUTOR = re.compile(r"Lost executor \S+ on ")


def bronze_copy(source: Settings, var_dir) -> Settings:
    """``source``'s settings on a lake holding only a copy of its bronze tables."""
    settings = dataclasses.replace(source, var_dir=var_dir)
    settings.lake_dir.mkdir(parents=True)
    for table in source.lake_dir.iterdir():
        if table.name.startswith(BRONZE_PREFIX):
            shutil.copytree(table, settings.lake_dir / table.name)
    return settings


def app_ids(spark) -> set[str]:
    return {str(app["id"]) for app in spark.applications()}


def test_worker_lost_during_validate_the_job_finishes_on_the_other(cluster, national, tmp_path):
    period_id, api = national.periods[0], cluster.airflow.api
    cluster = cluster.spark
    settings = bronze_copy(national.settings, tmp_path / "disturbed")
    victim = 0
    try:
        before = app_ids(cluster)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=1) as pool:
            job = pool.submit(run_job, settings, VALIDATE + [period_id])

            def app_on_both_workers() -> str | None:
                if job.done():
                    raise AssertionError(f"validate ended before it had executors on both workers:\n"
                                         f"{job.result().stderr[-2000:]}")
                for app in cluster.state().get("activeapps", []):
                    if app["id"] in before or len(cluster.executors_by_worker(app["id"], running_only=True)) != 2:
                        continue
                    # Listed is not yet running: wait until both executors have had tasks.
                    if all(cluster.executor_pids(i, app["id"], with_tasks=True) for i in range(2)):
                        return str(app["id"])
                return None

            app = cluster.wait_until(app_on_both_workers, EXECUTORS_TIMEOUT_S,
                                     "validate's executors on both workers, with tasks")
            executors = cluster.executor_pids(victim, app, with_tasks=True)
            assert len(executors) == 1, executors
            worker_pid = cluster.workers[victim].kill()
            killed_at = time.monotonic() - started
            deadline = time.monotonic() + EXECUTOR_EXIT_TIMEOUT_S
            while pid_alive(executors[0]) and time.monotonic() < deadline:
                time.sleep(0.2)
            survived = pid_alive(executors[0])
            if survived:  # never leave it running: by the pid we saw it run under
                os.kill(executors[0], signal.SIGKILL)
            run = job.result()
        validated = run.result()
        assert not survived, "the executor outlived its killed worker (WorkerWatcher did not stop it)"
        survivor = cluster.worker_id(1 - victim)
        # After the kill only the surviving worker's executors are left (a dead worker has no UI to ask).
        assert set(cluster.executors_by_worker(app)) == {survivor}
    finally:  # the module's cluster stays whole
        if not cluster.workers[victim].running():
            cluster.restart_worker(victim)

    run_job(settings, PUBLISH + [period_id]).result()
    in_dag = api.xcom(national.runs[0]["dag_id"], national.runs[0]["run_id"], "validate_batch")
    counted = ("events_in", "events_accepted", "events_quarantined", "events_held_back", "events_duplicate")
    assert {k: validated.get(k) for k in counted} == {k: in_dag.get(k) for k in counted}
    assert validated["events_in"] == sum(validated.get(k, 0) for k in counted[1:])
    for name in GOLD_TABLES:
        assert snapshot(settings, name) == snapshot(national.settings, name, period_id) != [], name

    figures = {
        "fault": "Spark standalone worker SIGKILL during validate",
        "injected": f"Worker JVM pid {worker_pid} SIGKILL once validate's app {app} had executors on both workers",
        "kill_at_seconds": round(killed_at, 1),
        "executor_exited_with_worker": not survived,
        "validate_seconds": round(run.seconds, 1),
        "tasks_lost": len(LOST_TASK.findall(run.stderr)),
        "executors_lost": len(LOST_EXECUTOR.findall(run.stderr)),
        "events_in": validated["events_in"], "lost": 0, "doubled": 0,
    }
    record_fault(**figures)
    print(json.dumps(figures))
