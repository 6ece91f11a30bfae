"""Losing cluster nodes while the period pipeline DAG runs on the cluster.

The package's national run is disturbed twice, one fault per task, and its gold must still equal the
undisturbed single-node run of the same input:

- while ``validate_batch`` runs, once its Spark application has executors on both workers and the
  victim's executor is running a task, that Spark worker's JVM is SIGKILLed by pid: Spark must rerun
  the lost tasks on the other worker inside the same Airflow try;
- while ``publish_tables`` runs, the Celery worker running it is SIGKILLed by pid with its process
  group (the task and its Spark driver): the scheduler must notice the missing heartbeats and retry
  the task on the other Celery worker.

Each fault's outcome is a :class:`NodeLoss`: its figures, or the error that stopped it (recorded
rather than raised, so the run goes on and the other checks still see its tables).
"""
from __future__ import annotations

import os
import signal
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from readiness.dev.cluster.cli import PIPELINE_DAG, Cluster
from readiness.dev.daemon import Daemon, pid_alive

SPARK_TASK = "validate_batch"
CELERY_TASK = "publish_tables"
# Bounds of the polls.
TASK_START_TIMEOUT_S = 1500.0
EXECUTORS_TIMEOUT_S = 240.0
BUSY_TIMEOUT_S = 60.0  # how long to wait for the victim's executor to be inside a task
EXECUTOR_EXIT_TIMEOUT_S = 30.0
RETRY_TIMEOUT_S = 600.0


@dataclass
class NodeLoss:
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: The node the fault took down (restarted by :func:`restore`).
    victim: Daemon | None = None

    def summary(self) -> dict[str, Any] | str:
        """The figures without the task instances' full records, or the error."""
        if self.error is not None:
            return self.error
        return {k: v for k, v in self.figures.items() if k not in ("first", "tries")}

    def assert_ok(self) -> dict[str, Any]:
        assert self.error is None, self.error
        return self.figures


def _guarded(fault: Callable[[NodeLoss], None]) -> NodeLoss:
    outcome = NodeLoss()
    try:
        fault(outcome)
    except Exception:  # noqa: BLE001 - recorded for the test that checks this fault
        outcome.error = traceback.format_exc(limit=6)
    return outcome


def triggered_run(cluster: Cluster, running: Callable[[], bool], timeout: float = 600.0) -> str:
    """The id of the pipeline DAG's first run, once the run command (``running``) has triggered it."""
    api, deadline = cluster.airflow.api, time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert running(), "the cluster run ended before it triggered the pipeline DAG"
        try:
            runs = api.runs(PIPELINE_DAG)
        except OSError:  # the DAG not serialised yet
            runs = []
        if runs:
            return str(runs[0]["dag_run_id"])
        time.sleep(2)
    raise AssertionError(f"no {PIPELINE_DAG} run within {timeout:.0f} s")


def running_try(cluster: Cluster, run_id: str, task_id: str, timeout: float = TASK_START_TIMEOUT_S) -> dict:
    """Until ``task_id`` runs on a worker with its task process started (pid and host recorded)."""
    api, deadline = cluster.airflow.api, time.monotonic() + timeout
    while time.monotonic() < deadline:
        ti = {t["task_id"]: t for t in api.task_instances(PIPELINE_DAG, run_id)}.get(task_id)
        if ti and ti["state"] == "running" and ti.get("pid") and ti.get("hostname"):
            return ti
        assert api.run(PIPELINE_DAG, run_id)["state"] in ("queued", "running"), f"the run ended before {task_id}"
        time.sleep(1)
    raise AssertionError(f"{task_id} did not start running within {timeout:.0f} s")


def _ended_tries(cluster: Cluster, run_id: str, task_id: str, count: int, timeout: float) -> list[dict]:
    """Every try of ``task_id`` once ``count`` of them exist and the last has ended."""
    api, deadline = cluster.airflow.api, time.monotonic() + timeout
    while time.monotonic() < deadline:
        tries = api.task_tries(PIPELINE_DAG, run_id, task_id)
        if len(tries) >= count and tries[-1]["state"] in ("success", "failed", "upstream_failed"):
            return tries
        time.sleep(1)
    raise AssertionError(f"{task_id}: try {count} did not end within {timeout:.0f} s")


def lose_a_spark_worker(cluster: Cluster, run_id: str, victim: int = 0) -> NodeLoss:
    def fault(outcome: NodeLoss) -> None:
        spark, api = cluster.spark, cluster.airflow.api
        ti = running_try(cluster, run_id, SPARK_TASK)
        task_started = datetime.fromisoformat(ti["start_date"]).timestamp()

        def app_on_both_workers() -> str | None:
            for app in spark.state().get("activeapps", []):
                if app["starttime"] / 1000 < task_started - 1:
                    continue  # an application from before the task
                if len(spark.executors_by_worker(app["id"], running_only=True)) != 2:
                    continue
                # Listed is not yet running: wait until both executors have had tasks.
                if all(spark.executor_pids(i, app["id"], with_tasks=True) for i in range(2)):
                    return str(app["id"])
            return None

        app = spark.wait_until(app_on_both_workers, EXECUTORS_TIMEOUT_S,
                               f"{SPARK_TASK}'s executors on both workers, with tasks")
        executors = spark.executor_pids(victim, app, with_tasks=True)
        assert len(executors) == 1, executors
        busy, deadline = set(), time.monotonic() + BUSY_TIMEOUT_S
        while not busy and time.monotonic() < deadline:
            busy = spark.running_tasks(victim, app)
            if not busy:
                time.sleep(0.01)
        outcome.victim = spark.workers[victim]
        worker_pid = outcome.victim.kill()
        killed_at, killed_wall = time.monotonic(), time.time()
        state_at_kill = api.task_instances(PIPELINE_DAG, run_id)
        deadline = time.monotonic() + EXECUTOR_EXIT_TIMEOUT_S
        while pid_alive(executors[0]) and time.monotonic() < deadline:
            time.sleep(0.2)
        survived = pid_alive(executors[0])
        if survived:  # never leave it running: by the pid we saw it run under
            os.kill(executors[0], signal.SIGKILL)
        tries = _ended_tries(cluster, run_id, SPARK_TASK, 1, RETRY_TIMEOUT_S)
        outcome.figures.update(
            app=app, worker_pid=worker_pid,
            kill_after_task_start_s=round(killed_wall - task_started, 1),
            tasks_running_at_kill=sorted(busy),
            task_running_at_kill={t["task_id"]: t["state"] for t in state_at_kill}.get(SPARK_TASK),
            executor_exited_with_worker=not survived,
            # A dead worker has no UI to ask: after the kill only the survivor's executors are listed.
            executors_after=spark.executors_by_worker(app), survivor=spark.worker_id(1 - victim),
            tries=[(t["try_number"], t["state"], t["hostname"]) for t in tries],
            validate_after_kill_s=round(time.monotonic() - killed_at, 1),
        )
        spark.restart_worker(victim)  # for the tasks after validate
    return _guarded(fault)


def lose_a_celery_worker(cluster: Cluster, run_id: str) -> NodeLoss:
    def fault(outcome: NodeLoss) -> None:
        airflow = cluster.airflow
        first = running_try(cluster, run_id, CELERY_TASK)
        time.sleep(5)  # well into the task: its Spark session is starting
        outcome.victim = airflow.worker_for_host(first["hostname"])
        killed = airflow.kill_worker(outcome.victim)
        killed_at = time.monotonic()
        if pid_alive(first["pid"]):  # the task's own process, from the task instance
            os.kill(first["pid"], signal.SIGKILL)
        detected_at = retry_started_at = None
        deadline = killed_at + RETRY_TIMEOUT_S
        while time.monotonic() < deadline:
            tries = airflow.api.task_tries(PIPELINE_DAG, run_id, CELERY_TASK)
            if detected_at is None and tries[0]["state"] not in ("running", None):
                detected_at = time.monotonic()
            if len(tries) > 1 and tries[1]["state"] == "running" and retry_started_at is None:
                retry_started_at = time.monotonic()
            if len(tries) > 1 and tries[1]["state"] in ("success", "failed"):
                break
            time.sleep(1)
        done_at = time.monotonic()
        outcome.figures.update(
            first=first, killed_pids=killed, worker_alive_after_kill=outcome.victim.running(),
            tries=airflow.api.task_tries(PIPELINE_DAG, run_id, CELERY_TASK),
            lost_task_detected_s=None if detected_at is None else round(detected_at - killed_at, 1),
            retry_started_after_kill_s=None if retry_started_at is None else round(retry_started_at - killed_at, 1),
            retry_duration_s=None if retry_started_at is None else round(done_at - retry_started_at, 1),
        )
    return _guarded(fault)


def restore(cluster: Cluster, *losses: NodeLoss) -> None:
    """Restart every node the faults took down: the package's cluster stays whole."""
    for loss in losses:
        if loss.victim is None or loss.victim.running():
            continue
        if loss.victim in cluster.spark.workers:
            cluster.spark.restart_worker(cluster.spark.workers.index(loss.victim))
        else:
            loss.victim.start()
            loss.victim.wait_ready(120)
