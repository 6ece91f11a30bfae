"""The SparkSession every job uses: local mode, Delta Lake and the Kafka source from cached jars.

Spark's own package resolver (``spark.jars.packages``) is not used: the jars are fetched once with
Maven into the project cache (``readiness.ops.maven``) and handed to Spark by path, so jobs run offline.
"""
from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from readiness.ops.maven import spark_package_jars
from readiness.settings import PACKAGE_DATA, Settings

LOG_CONFIG = PACKAGE_DATA / "log4j2-spark.properties"


def spark_config(settings: Settings) -> dict[str, str]:
    jars = ",".join(str(p) for p in spark_package_jars(settings))
    return {
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
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={settings.var_dir / 'derby'} "
                                         f"-Dlog4j2.configurationFile={LOG_CONFIG}",
        "spark.ui.enabled": "false" if settings.env != "production" else "true",
        "spark.sql.adaptive.enabled": "true",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        # Delta replays its log with this many tasks; the default (50) dominates small local jobs.
        "spark.databricks.delta.snapshotPartitions": "2",
    }


def get_spark(settings: Settings) -> SparkSession:
    """Return the active session or start one configured for ``settings``."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # pyspark takes the workers' interpreter from PYSPARK_PYTHON when it pickles a UDF.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    # Spark is local here: bind to loopback rather than whatever the host name resolves to.
    if settings.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder
    for key, value in spark_config(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
