"""The Spark session's configuration for local mode and for a standalone master (no Spark started)."""
from __future__ import annotations

from readiness.lake.spark import spark_config
from readiness.settings import load_settings


def test_local_mode_gets_no_standalone_settings():
    config = spark_config(load_settings("local", environ={}))
    assert config["spark.master"] == "local[2]"
    assert not {"spark.executor.memory", "spark.cores.max", "spark.driver.host"} & set(config)


def test_a_standalone_master_gets_the_driver_address_and_the_executors_share():
    settings = load_settings("cluster", environ={})
    config = spark_config(settings)
    assert config["spark.master"] == "spark://127.0.0.1:27077"
    assert (config["spark.driver.host"], config["spark.driver.bindAddress"]) == ("127.0.0.1", "127.0.0.1")
    assert (config["spark.executor.memory"], config["spark.cores.max"]) == ("1g", "2")
    assert config["spark.executorEnv.PYSPARK_PYTHON"] == config["spark.pyspark.python"]
    assert int(config["spark.task.maxFailures"]) > 1


def test_production_leaves_the_driver_address_to_spark_and_takes_every_core():
    config = spark_config(load_settings("production", environ={}))
    assert config["spark.master"] == "spark://spark-master:7077"
    assert "spark.driver.host" not in config and "spark.cores.max" not in config


def test_jvm_options_reach_the_driver_and_the_executors_only_where_set():
    ci = spark_config(load_settings("ci", environ={}))
    assert ci["spark.driver.extraJavaOptions"].split()[-2:] == ["-XX:TieredStopAtLevel=1",
                                                                 "-XX:ReservedCodeCacheSize=256m"]
    assert ci["spark.driver.extraJavaOptions"].startswith("-Dderby.system.home=")
    local = spark_config(load_settings("local", environ={}))
    assert "-XX:" not in local["spark.driver.extraJavaOptions"]
    cluster = spark_config(load_settings("cluster", environ={"READINESS_SPARK_JVM_OPTIONS": "-XX:+UseSerialGC"}))
    assert cluster["spark.executor.extraJavaOptions"].split()[-1] == "-XX:+UseSerialGC"
    assert cluster["spark.driver.extraJavaOptions"].split()[-1] == "-XX:+UseSerialGC"
    assert "-XX:" not in spark_config(load_settings("cluster", environ={}))["spark.executor.extraJavaOptions"]


def test_a_quick_jit_only_profile_also_raises_the_code_cache():
    """C1 alone reserves 48 MB for compiled code; a DAG's Spark tasks fill that, and the JVM then
    disables its compiler for the rest of the run."""
    for env in ("local", "ci", "cluster", "production"):
        options = load_settings(env, environ={}).spark_jvm_options.split()
        if "-XX:TieredStopAtLevel=1" in options:
            sizes = [o.split("=")[1] for o in options if o.startswith("-XX:ReservedCodeCacheSize=")]
            assert sizes and sizes[0].endswith("m") and int(sizes[0][:-1]) >= 240, (env, options)
