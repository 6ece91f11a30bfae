"""Settings of the cluster profile on free loopback ports, for the tests that start cluster services."""
from __future__ import annotations

from pathlib import Path

from readiness.dev.provision import shared_deployment_files
from readiness.settings import Settings, load_settings
from support.ports import free_port


def cluster_settings(var_dir: Path, kafka_nodes: int = 3, **overrides: object) -> Settings:
    """The ``cluster`` profile with every port of its own (brokers, controllers, Spark master and
    UI, Airflow, Redis, PostgreSQL) and all state under ``var_dir``; its Spark JVMs keep the ``ci``
    profile's options (the suite's many short jobs)."""
    brokers = [f"127.0.0.1:{free_port()}" for _ in range(kafka_nodes)]
    controllers = [free_port() for _ in range(kafka_nodes)]
    values: dict[str, object] = {
        "var_dir": var_dir,
        "kafka_bootstrap": ",".join(brokers),
        "kafka_controller_port": controllers[0],
        "kafka_controller_quorum": ",".join(f"{i}@127.0.0.1:{port}" for i, port in enumerate(controllers, 1)),
        "kafka_replication_factor": min(3, kafka_nodes),
        "kafka_min_insync_replicas": min(2, kafka_nodes),
        "spark_master": f"spark://127.0.0.1:{free_port()}",
        "spark_master_ui": f"http://127.0.0.1:{free_port()}",
        "airflow_port": free_port(),
        "redis_port": free_port(),
        "postgres_port": free_port(),
        "spark_jvm_options": load_settings("ci", environ={}).spark_jvm_options,
        **shared_deployment_files(var_dir),
    }
    values.update(overrides)
    return load_settings(env="cluster", environ={}, **values)
