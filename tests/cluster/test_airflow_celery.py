"""Airflow's CeleryExecutor on the package's cluster (PostgreSQL metadata, Redis, two Celery workers,
the Spark standalone cluster): the services answer, and a Celery worker lost while it runs a task.

The services answer (the scheduler and DAG processor healthy, both workers answering a ping). In the
package's national run, the Celery worker running ``publish_tables`` is SIGKILLed by pid with the rest
of its process group (:func:`support.node_loss.lose_a_celery_worker`). The scheduler notices the
missing heartbeats, the task is retried on the other worker (try 2), the run succeeds and its gold
equals the undisturbed single-node run's row by row.
"""
from __future__ import annotations

import pytest

from readiness.lake.tables import GOLD_TABLES
from support.faults import canonical_rows, record_fault
from support.node_loss import CELERY_TASK

pytestmark = pytest.mark.slow


def test_the_airflow_services_and_both_celery_workers_answer(cluster):
    airflow = cluster.airflow
    assert all(worker.running() for worker in airflow.workers)
    assert sorted(airflow.ping_workers()) == sorted(airflow.celery_name(i) for i in (1, 2))
    status = airflow.status()
    assert status["health"]["scheduler"] == "healthy" and status["health"]["dag_processor"] == "healthy"


def test_lost_celery_worker_task_is_retried_on_the_other_worker(national, single_node):
    figures = national.celery_loss.assert_ok()
    first, tries = figures["first"], figures["tries"]
    print(f"worker loss: { {k: v for k, v in figures.items() if k not in ('first', 'tries')} }; tries: "
          f"{[(t['try_number'], t['state'], t['hostname']) for t in tries]}")
    assert not figures["worker_alive_after_kill"]
    assert [t["try_number"] for t in tries] == [first["try_number"], first["try_number"] + 1]
    assert tries[0]["state"] != "success" and tries[1]["state"] == "success"
    assert tries[1]["hostname"] != first["hostname"] and tries[1]["hostname"].startswith("worker-")
    assert figures["lost_task_detected_s"] is not None and figures["lost_task_detected_s"] < 120
    assert [r["state"] for r in national.runs] == ["success"]
    for name in GOLD_TABLES:
        assert canonical_rows(national.gold[name]) == single_node[name], name
    record_fault(fault=f"cluster: Celery worker SIGKILL while it runs {CELERY_TASK}",
                 injected=f"SIGKILL of the worker's process group (pids {figures['killed_pids']})", runs=1,
                 lost=0, doubled=0, **{k: figures[k] for k in ("lost_task_detected_s", "retry_started_after_kill_s",
                                                               "retry_duration_s")})
