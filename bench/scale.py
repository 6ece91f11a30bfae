"""Scale: the pipeline on ``local[2]`` (the baseline) against the two-worker Spark standalone cluster
of the ``cluster`` profile, in the same run, for 1x, 100x and 1,000x a national period.

Each size is published once to its own topic; then the same pipeline worker
(:mod:`bench.pipeline_worker`: ingest, validate and aggregate, in a fresh process) runs twice on it,
each into a fresh lake: once with ``spark_master=local[2]`` and once against a Spark master and two
workers started here through pyspark's ``spark-class`` (:class:`readiness.dev.cluster.spark.SparkCluster`,
with the cluster profile's worker cores and memory). Both write the same gold values (compared).

Memory: local mode, the peak summed RSS of the worker's process tree (driver, JVM, Python workers);
on the cluster, that of the driver's tree plus, sampled at the same time, the two Spark workers'
trees (the Worker JVMs, their executors and the executors' Python workers).

    python -m bench.run --only scale [--scale-sizes period,100x,1000x]
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from bench.common import TreeRssSampler, free_port
from bench.pipeline import Size, prepare, run_pipeline_worker
from readiness.settings import Settings, load_settings

SIZES = {"period": Size("period", 1, 1), "100x": Size("100x", 1, 100), "1000x": Size("1000x", 1, 1000)}
#: The Spark settings of the cluster profile that the benchmark's cluster keeps (its ports are its own).
CLUSTER_SPARK_FIELDS = ("spark_driver_memory", "spark_executor_memory", "spark_cores_max", "spark_workers",
                        "spark_worker_cores", "spark_worker_memory")


def cluster_spark(settings: Settings, var_dir: Path) -> Settings:
    """``settings`` with the cluster profile's Spark standalone part, on free loopback ports."""
    profile = load_settings("cluster", environ={})
    return dataclasses.replace(
        settings, var_dir=var_dir, spark_master=f"spark://127.0.0.1:{free_port()}",
        spark_master_ui=f"http://127.0.0.1:{free_port()}", spark_driver_host="127.0.0.1",
        **{name: getattr(profile, name) for name in CLUSTER_SPARK_FIELDS})


def _spark_overrides(settings: Settings) -> dict[str, object]:
    return {"spark_master": settings.spark_master, "spark_driver_host": settings.spark_driver_host,
            **{name: getattr(settings, name) for name in CLUSTER_SPARK_FIELDS}}


def _gold_values(path: Path) -> list[list]:
    return sorted(json.loads(path.read_text()), key=repr)


def run_mode(topic: Settings, periods: list[str], work: Path, timeout: float, scale: int, mode: str,
             cluster=None) -> dict:
    """One pipeline run of a size, local (``cluster`` None) or on the standalone cluster."""
    overrides = _spark_overrides(cluster.settings) if cluster is not None else {}
    samplers = [TreeRssSampler(pid) for pid in (w.pid() for w in cluster.workers) if pid] if cluster else []
    for sampler in samplers:
        sampler.__enter__()
    try:
        out = run_pipeline_worker(topic, periods, work, timeout, scale=scale, tag=mode, spark=overrides)
    finally:
        for sampler in samplers:
            sampler.__exit__(None, None, None)
    out["mode"] = mode
    out["driver_peak_rss_bytes"] = out["peak_rss_bytes"]
    out["workers_peak_rss_bytes"] = sum(s.peak for s in samplers)
    out["total_peak_rss_bytes"] = out["peak_rss_bytes"] + out["workers_peak_rss_bytes"]
    out["cpu_s"] = out.get("cpu_s", 0.0) + sum(s.cpu_seconds for s in samplers)
    return out


def run(settings: Settings, work_root: Path, sizes: list[str], timeout: float, log=print) -> dict:
    from bench.common import with_topic
    from readiness.dev.cluster.spark import SparkCluster

    spark_settings = cluster_spark(settings, work_root / "spark-cluster")
    cluster = SparkCluster(spark_settings)
    log(f"  starting a Spark master and {spark_settings.spark_workers} workers on {spark_settings.spark_master} ...")
    cluster.start()
    results = []
    try:
        for name in sizes:
            size = SIZES[name]
            work = work_root / f"scale-{size.name}"
            work.mkdir(parents=True, exist_ok=True)
            topic = with_topic(settings, f"scale-{size.name}")
            log(f"  [{size.name}] simulating and publishing {size.label} ...")
            data = prepare(size, topic, work)
            row = {"size": size.name, "label": size.label, "scale": size.scale, "input": data}
            for mode in ("local", "cluster"):
                log(f"  [{size.name}] pipeline on {'local[2]' if mode == 'local' else spark_settings.spark_master} "
                    f"(limit {timeout:.0f} s) ...")
                row[mode] = run_mode(topic, data["periods"], work, timeout, size.scale, mode,
                                     cluster if mode == "cluster" else None)
                done = row[mode]
                log(f"  [{size.name}] {mode}: " + (f"{done['pipeline_s']:.1f} s, peak {done['total_peak_rss_bytes'] / 2**20:,.0f} MiB"
                                                   if done["exit_code"] == 0 else f"exit {done['exit_code']} after "
                                                   f"{done['process_wall_s']:.0f} s (log {work / (mode + '.log')})"))
            if row["local"]["exit_code"] == 0 and row["cluster"]["exit_code"] == 0:
                row["same_gold"] = _gold_values(work / "local-gold.json") == _gold_values(work / "cluster-gold.json")
                row["ratio_cluster_local"] = row["cluster"]["pipeline_s"] / row["local"]["pipeline_s"]
            results.append(row)
    finally:
        cluster.stop()
    return {"sizes": results, "timeout_s": timeout, "crossover": crossover(results),
            "cluster": {name: getattr(spark_settings, name) for name in CLUSTER_SPARK_FIELDS}}


def merge_runs(earlier: dict | None, latest: dict) -> dict:
    """The latest scale section, plus the sizes an earlier run measured that the latest did not (the
    1,000x size alone takes hours); every row keeps when, and under what load, it was measured."""
    def tagged(section: dict) -> list[dict]:
        return [{"measured_at": section["measured_at"], "load_before": section["load_before"],
                 "load_after": section["load_after"], **row} for row in section["data"]["sizes"]]

    rows = tagged(latest)
    if earlier:
        have = {r["size"] for r in rows}
        rows += [r for r in tagged(earlier) if r["size"] not in have]
    rows.sort(key=lambda r: r["scale"])
    return {**latest, "data": {**latest["data"], "sizes": rows, "crossover": crossover(rows)}}


def crossover(rows: list[dict]) -> str:
    """Where the cluster starts to beat local mode, in words, from the measured sizes only."""
    timed = [r for r in rows if "ratio_cluster_local" in r]
    if not timed:
        return "no size finished in both modes"
    faster = [r for r in timed if r["ratio_cluster_local"] < 1]
    if not faster:
        largest = max(timed, key=lambda r: r["scale"])
        return (f"local[2] was faster at every size measured, up to {largest['label']} "
                f"(cluster / local {largest['ratio_cluster_local']:.2f}x): on one 2-core machine the cluster's "
                "executors share the same cores as the local run and add scheduling and shuffle over the network")
    first = min(faster, key=lambda r: r["scale"])
    return f"the cluster was faster from {first['label']} on (cluster / local {first['ratio_cluster_local']:.2f}x)"


if __name__ == "__main__":  # pragma: no cover - use bench.run
    sys.exit("use: python -m bench.run --only scale")
