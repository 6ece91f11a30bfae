"""The SparkSession every job uses: Delta Lake and the Kafka source from cached jars, in local mode
or on a standalone master (``spark://``, the ``cluster`` and ``production`` profiles).

Spark's own package resolver (``spark.jars.packages``) is not used: the jars are fetched once with
Maven into the project cache (``readiness.ops.maven``) and handed to Spark by path, so jobs run offline.
On a standalone master ``spark.jars`` also ships them to the executors (each fetches them from the
driver's file server into its own directory and adds them to its class loader).

Executors' Python: the driver's interpreter (``sys.executable``, the project's venv) by path. On the
loopback cluster every executor runs on this machine and so shares that environment; on separate
hosts each worker must hold the same environment at the same path (the docker/ workers run the
project image, whose venv is the driver's). No code that runs on executors reads the settings: the
decoder's UDF reads the Avro schemas shipped in the package, the signature UDF gets the key registry's
snapshot in its closure, and the Kafka source gets its connection options (CA file, credentials) from
the driver; the CA file is a path every host must hold (the lake too is a directory every node sees).
"""
from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from readiness.ops.maven import spark_package_jars
from readiness.settings import PACKAGE_DATA, Settings

LOG_CONFIG = PACKAGE_DATA / "log4j2-spark.properties"
EXECUTOR_LOG_CONFIG = PACKAGE_DATA / "log4j2-spark-executor.properties"


# Attempts of one task before its job fails. Tasks lost with their executor (a worker killed) are
# retried without counting towards this; it bounds failures of the task's own making.
TASK_MAX_FAILURES = 4


def java_options(settings: Settings, *own: str) -> str:
    """A Spark JVM's ``own`` options followed by the settings' ``spark_jvm_options`` (when set)."""
    return " ".join(filter(None, [*own, settings.spark_jvm_options]))


def spark_config(settings: Settings) -> dict[str, str]:
    jars = ",".join(str(p) for p in spark_package_jars(settings))
    config = {
        "spark.master": settings.spark_master,
        "spark.app.name": "readiness",
        # Python workers must run the same interpreter (and packages) as the driver.
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.jars": jars,
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.warehouse.dir": str(settings.var_dir / "warehouse"),
        "spark.driver.extraJavaOptions": java_options(settings, f"-Dderby.system.home={settings.var_dir / 'derby'}",
                                                      f"-Dlog4j2.configurationFile={LOG_CONFIG}"),
        "spark.ui.enabled": "false" if settings.env != "production" else "true",
        "spark.sql.adaptive.enabled": "true",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        # Delta replays its log with this many tasks; the default (50) dominates small local jobs.
        "spark.databricks.delta.snapshotPartitions": "2",
    }
    if settings.spark_master.startswith("spark://"):
        config.update(standalone_config(settings))
    return config


def standalone_config(settings: Settings) -> dict[str, str]:
    """What a standalone master adds: where executors reach the driver, what each executor gets,
    their log4j2 (warnings, and the start and end of each task), and retries of the tasks a lost
    executor took with it."""
    config = {
        "spark.executor.memory": settings.spark_executor_memory,
        "spark.executor.extraJavaOptions": java_options(settings, f"-Dlog4j2.configurationFile={EXECUTOR_LOG_CONFIG}"),
        "spark.executorEnv.PYSPARK_PYTHON": sys.executable,
        "spark.task.maxFailures": str(TASK_MAX_FAILURES),
        # A lost executor's shuffle output is gone with it: recompute it (FetchFailed -> stage retry).
        "spark.stage.maxConsecutiveAttempts": "4",
    }
    if settings.spark_cores_max > 0:
        config["spark.cores.max"] = str(settings.spark_cores_max)
    if settings.spark_driver_host:
        config["spark.driver.host"] = settings.spark_driver_host
        config["spark.driver.bindAddress"] = settings.spark_driver_host
    return config


def get_spark(settings: Settings) -> SparkSession:
    """Return the active session or start one configured for ``settings``."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # pyspark takes the workers' interpreter from PYSPARK_PYTHON when it pickles a UDF.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    # Spark is local here (or its executors reach the driver on loopback): bind to loopback rather
    # than whatever the host name resolves to.
    if settings.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    elif settings.spark_driver_host:
        os.environ.setdefault("SPARK_LOCAL_IP", settings.spark_driver_host)
    builder = SparkSession.builder
    for key, value in spark_config(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
