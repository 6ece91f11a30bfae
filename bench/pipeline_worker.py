"""One pipeline run in a fresh process (so its memory is its own): ingest every event on the topic,
then validate and aggregate each period. Called by :mod:`bench.pipeline`; prints nothing, writes a
JSON result file.

    python -m bench.pipeline_worker CONFIG.json

CONFIG holds ``var_dir``, ``bootstrap``, ``topic``, ``topic_targets``, ``periods``, ``result``, ``scale``
(the simulation's scale: the unit registry is extended to match), ``settings`` (overrides, e.g. a
standalone Spark master), and optionally
``event_log_dir`` (Spark event log, for stage timings), ``profile_dir`` (a cProfile of each
pipeline stage) and ``dump_gold`` (the gold values as JSON, compared with the DuckDB baseline).
"""
from __future__ import annotations

import time

PROCESS_START = time.time()

import collections  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def tag_call_sites(spark) -> "collections.Counter[str]":
    """Name every Spark job after the project code that triggered it (profiling runs only).

    PySpark's DataFrame API leaves jobs named after the py4j entry point ("count at
    NativeMethodAccessorImpl.java:0"). Before each JVM call whose Python caller differs from the
    previous one, this sets Spark's ``callSite.short`` local property to the innermost frame in
    ``readiness/`` (plus the innermost Great Expectations frame, if any), so the event log names
    stages after e.g. ``validate.py:63 validate_period``. It costs one extra py4j call per change
    of caller, so it is not used in the timed runs. Returns a counter of JVM calls by that site.
    """
    import collections
    import threading

    import py4j.java_gateway as gateway

    original = gateway.JavaMember.__call__
    state = threading.local()
    calls: collections.Counter[str] = collections.Counter()
    jsc = spark.sparkContext._jsc

    def site() -> str:
        frame = sys._getframe(2)
        project = library = None
        while frame is not None and project is None:
            name = frame.f_code.co_filename
            if "/readiness/" in name and "/site-packages/" not in name:
                project = f"readiness/{name.rsplit('/readiness/', 1)[1]}:{frame.f_lineno} {frame.f_code.co_name}"
            elif library is None and "/great_expectations/" in name:
                library = f"GX {frame.f_code.co_name}"
            frame = frame.f_back
        return " / ".join(x for x in (project, library) if x) or "other"

    def call(self, *args):
        if getattr(state, "busy", False):
            return original(self, *args)
        state.busy = True
        try:
            here = site()
            calls[here] += 1
            if here != getattr(state, "last", None):
                jsc.setCallSite(here)
                state.last = here
        finally:
            state.busy = False
        return original(self, *args)

    gateway.JavaMember.__call__ = call
    return calls


def scale_registry(scale: int) -> None:
    """Extend the unit registry with the copies ``SimulationProfile(scale=N)`` reports under
    (``<code>#1`` .. ``<code>#N-1``), as a country with N times the units would register them.

    Without it the suite's registry rule (``unit_key`` in the units in force) quarantines every copy
    and the gate policy (at most half of a province's reports quarantined) fails the batch, so a
    scaled data set could not be measured. ``units_open_on`` reads ``reporting_units`` at call
    time, so replacing the latter in :mod:`readiness.domain.reference` covers every caller.
    """
    import dataclasses

    import readiness.domain.reference as reference
    base = reference.reporting_units()
    copies = tuple(dataclasses.replace(u, code=f"{u.code}#{k}") for k in range(1, scale) for u in base)
    reference.reporting_units = lambda: base + copies


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    if config.get("event_log_dir"):
        # Picked up by pyspark when it launches the JVM; get_spark adds its own --conf flags.
        os.environ["PYSPARK_SUBMIT_ARGS"] = (
            f"--conf spark.eventLog.enabled=true --conf spark.eventLog.dir=file://{config['event_log_dir']} "
            "--conf spark.eventLog.compress=false pyspark-shell")
    if config.get("scale", 1) > 1:
        scale_registry(config["scale"])
    from readiness.lake.spark import get_spark
    from readiness.pipeline.aggregate import aggregate_period
    from readiness.pipeline.ingest import ingest_reports
    from readiness.pipeline.validate import validate_period
    from readiness.settings import load_settings

    settings = load_settings(env="ci", var_dir=Path(config["var_dir"]), kafka_bootstrap=config["bootstrap"],
                             topic_reports=config["topic"], topic_targets=config["topic_targets"],
                             **config.get("settings", {}))
    imported = time.time()
    spark = get_spark(settings)
    session_ready = time.time()
    jvm_calls = tag_call_sites(spark) if config.get("tag_call_sites") else None
    jvm_calls_by_stage: dict[str, dict[str, int]] = {}
    profile_dir = Path(config["profile_dir"]) if config.get("profile_dir") else None
    profiles: dict[str, cProfile.Profile] = {}
    steps: list[dict] = []

    def step(stage: str, period: str | None, fn, *args):
        profiler = profiles.setdefault(stage, cProfile.Profile()) if profile_dir else None
        started = time.time()
        if profiler:
            profiler.enable()
        counts = fn(*args)
        if profiler:
            profiler.disable()
        steps.append({"stage": stage, "period": period, "start": started, "end": time.time(),
                      "seconds": time.time() - started, "counts": counts})
        if jvm_calls is not None:
            into = jvm_calls_by_stage.setdefault(stage, {})
            for where, n in jvm_calls.items():
                into[where] = into.get(where, 0) + n
            jvm_calls.clear()

    step("ingest", None, ingest_reports, settings)
    for period in config["periods"]:
        step("validate", period, validate_period, settings, period)
        step("aggregate", period, aggregate_period, settings, period)
    finished = time.time()

    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
        for stage, profiler in profiles.items():
            profiler.dump_stats(str(profile_dir / f"{stage}.prof"))
    gold_rows = None
    if config.get("dump_gold"):
        from readiness.lake import store
        from readiness.lake.tables import GOLD_VALUES

        rows = store.read(spark, settings, GOLD_VALUES).select(
            "basis", "period_id", "province_code", "indicator_code", "numerator_sum", "denominator_sum", "value",
            "units_reported").collect()
        gold_rows = len(rows)
        Path(config["dump_gold"]).write_text(json.dumps([list(r) for r in rows]))
    spark.stop()
    totals: dict[str, float] = {}
    for s in steps:
        totals[s["stage"]] = totals.get(s["stage"], 0.0) + s["seconds"]
    Path(config["result"]).write_text(json.dumps({
        "process_start": PROCESS_START,
        "import_s": imported - PROCESS_START,
        "spark_start_s": session_ready - imported,
        "pipeline_s": finished - session_ready,
        "stage_seconds": totals,
        "steps": steps,
        "gold_rows": gold_rows,
        "jvm_calls_by_stage": jvm_calls_by_stage,
    }, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
