"""The national pipeline on the cluster, end to end (the package's ``national`` run of
``python -m readiness.dev.cluster run``, under the node losses of :mod:`support.node_loss`): it prints
the ranking; its DAG tasks ran on the Celery workers and its Spark applications on both Spark workers
(as Airflow and the workers' JSON say); every event is in bronze once; and its gold tables equal, row
for row, those of the undisturbed single-node pipeline (``local[2]``, one broker) on the same input."""
from __future__ import annotations

import pytest

from readiness.domain.reference import province_names
from readiness.lake.tables import GOLD_TABLES
from support.faults import assert_exactly_once, canonical_rows

pytestmark = pytest.mark.slow


def test_the_cluster_run_prints_the_national_ranking(national):
    assert [r["state"] for r in national.runs] == ["success"]
    ranking = national.stdout[national.stdout.index("== readiness ranking --methodology ict-index"):]
    missing = [name for name in province_names().values() if name not in ranking]
    assert not missing, f"provinces missing from the ranking: {missing}"


def test_the_tasks_ran_on_the_celery_workers_and_spark_on_both_workers(cluster, national):
    api, workers = cluster.airflow.api, {f"worker-{i}.{cluster.airflow.node}" for i in (1, 2)}
    hosts = {ti["hostname"] for r in national.runs for ti in api.task_instances(r["dag_id"], r["run_id"])}
    assert hosts and hosts <= workers, hosts
    spark_workers = {cluster.spark.worker_id(i) for i in range(len(cluster.spark.workers))}
    assert national.apps, "the run registered no Spark application"
    on_both = [app for app in national.apps if set(cluster.spark.executors_by_worker(app)) == spark_workers]
    assert on_both, {app: cluster.spark.executors_by_worker(app) for app in national.apps}


def test_every_event_is_in_bronze_exactly_once(national):
    assert assert_exactly_once(national.settings) == (0, 0)


def test_gold_equals_the_single_node_run_of_the_same_input(national, single_node):
    for name in GOLD_TABLES:
        on_cluster = canonical_rows(national.gold[name])
        assert on_cluster, f"{name} is empty on the cluster"
        assert on_cluster == single_node[name], name
