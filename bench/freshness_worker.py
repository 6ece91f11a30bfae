"""The pipeline in a loop, as a scheduler would run it: every ``interval_s`` seconds (fixed rate;
an iteration that overruns is followed at once by the next) ingest, validate and aggregate one
period in a warm Spark session, then log the gold values of one indicator per province and the
time of the latest gold commit. Called by :mod:`bench.freshness`.

    python -m bench.freshness_worker CONFIG.json

Stops when the file ``stop_file`` exists or after ``max_s`` seconds.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from readiness import lake
    from readiness.pipeline.aggregate import aggregate_period
    from readiness.pipeline.ingest import ingest_reports
    from readiness.pipeline.validate import validate_period
    from readiness.settings import load_settings
    from readiness.spark_session import get_spark
    from readiness.tables import GOLD_VALUES

    settings = load_settings(env="ci", var_dir=Path(config["var_dir"]), kafka_bootstrap=config["bootstrap"],
                             topic_reports=config["topic"], topic_targets=config["topic_targets"])
    spark = get_spark(settings)
    period, indicator = config["period"], config["indicator"]
    stop_file, log_file = Path(config["stop_file"]), Path(config["log"])
    deadline = time.time() + config["max_s"]
    iteration = 0
    while not stop_file.exists() and time.time() < deadline:
        started = time.time()
        ingest = ingest_reports(settings)
        validate_period(settings, period)
        aggregate_period(settings, period)
        finished = time.time()
        rows = (lake.read(spark, settings, GOLD_VALUES)
                .where((F.col("period_id") == period) & (F.col("basis") == "as_reported")
                       & (F.col("indicator_code") == indicator))
                .select("province_code", "numerator_sum").collect())
        commit = DeltaTable.forPath(spark, settings.table_path(GOLD_VALUES)).history(1).collect()[0]
        with log_file.open("a") as handle:
            handle.write(json.dumps({
                "iteration": iteration, "start": started, "end": finished,
                "gold_commit": commit["timestamp"].timestamp(), "gold_version": commit["version"],
                "events_in": ingest.get("events_in"),
                "values": {r["province_code"]: r["numerator_sum"] for r in rows}}) + "\n")
        iteration += 1
        next_start = started + config["interval_s"]
        while time.time() < next_start and not stop_file.exists():
            time.sleep(0.2)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
