"""Losing a Spark standalone worker inside validate (the package's national run; the fault is
:func:`support.node_loss.lose_a_spark_worker`).

Once validate's application has executors with tasks on both workers and the victim's executor is
inside a task, the victim's Worker JVM is SIGKILLed by pid. Its executor must go down with it (through
the executor's WorkerWatcher; if it does not, it is SIGKILLed by pid too and the test fails). Spark
reruns what the lost executor held on the other worker, inside the same Airflow try: validate
succeeds at its first try, its counts reconcile, and the period's gold equals the undisturbed
single-node run's.
"""
from __future__ import annotations

import pytest

from readiness.lake.tables import GOLD_TABLES
from support.faults import canonical_rows, record_fault
from support.node_loss import SPARK_TASK

pytestmark = pytest.mark.slow

COUNTED = ("events_in", "events_accepted", "events_quarantined", "events_held_back", "events_duplicate")


def test_worker_lost_during_validate_the_job_finishes_on_the_other(cluster, national, single_node):
    figures = national.spark_loss.assert_ok()
    print(figures)
    assert figures["task_running_at_kill"] == "running", figures
    assert figures["tasks_running_at_kill"], "the victim's executor was not inside a task when its worker died"
    assert figures["executor_exited_with_worker"], "the executor outlived its killed worker"
    assert set(figures["executors_after"]) == {figures["survivor"]}, figures
    assert [(n, state) for n, state, _ in figures["tries"]] == [(1, "success")], figures["tries"]

    run = national.runs[0]
    validated = cluster.airflow.api.xcom(run["dag_id"], run["run_id"], SPARK_TASK)
    assert validated["events_in"] == sum(validated.get(k, 0) for k in COUNTED[1:]) > 0, validated
    for name in GOLD_TABLES:
        assert canonical_rows(national.gold[name]) == single_node[name], name
    record_fault(fault="cluster: Spark standalone worker SIGKILL inside validate (DAG on the cluster)",
                 injected=f"Worker JVM pid {figures['worker_pid']} SIGKILL while its executor ran tasks "
                          f"{figures['tasks_running_at_kill']} of {figures['app']}",
                 kill_after_task_start_s=figures["kill_after_task_start_s"],
                 validate_after_kill_s=figures["validate_after_kill_s"],
                 events_in=validated["events_in"], lost=0, doubled=0)
