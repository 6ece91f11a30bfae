"""Pipeline: wall time and peak memory of ingest + validate + aggregate
(``readiness.pipeline.ingest.ingest_reports``, ``validate.validate_period``,
``aggregate.aggregate_period``) for growing data sets, each size in a fresh process, against the
same aggregation written directly in DuckDB on the same input (:mod:`bench.duckdb_worker`).

Sizes are multiples of one national period's reports (``SimulationProfile(scale=N)`` repeats the
national set under distinct unit codes):

- ``period``: one national quarter (``quarters=1``);
- ``year``: one national year, its four quarters (``quarters=4``), four validate+aggregate runs;
- ``10x`` and ``100x``: one quarter with ``scale=10`` and ``scale=100``.

Memory is the peak summed RSS of the worker's process tree (Python driver, Spark JVM, Python
workers), sampled every 0.1 s with psutil.

    python -m bench.run --only pipeline [--quick]
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from bench import sparklog
from bench.common import AS_OF, PYTHON, SEED, encode_batch, ensure_topic, run_measured, send_batch, with_topic
from bench.duckdb_worker import flatten, write_messages
from readiness.dev.simulate import SimulationProfile, simulate
from readiness.settings import Settings


@dataclass(frozen=True)
class Size:
    name: str
    quarters: int
    scale: int

    @property
    def profile(self) -> SimulationProfile:
        return SimulationProfile(quarters=self.quarters, half_years=0, years=0, scale=self.scale)

    @property
    def label(self) -> str:
        return {"period": "1 national period", "year": "1 national year (4 quarters)"}.get(
            self.name, f"{self.scale}x a national period")


SIZES = {s.name: s for s in (Size("period", 1, 1), Size("year", 4, 1), Size("10x", 1, 10), Size("100x", 1, 100))}
#: Seconds allowed for the sizes below 100x (generous: a loaded 2-core machine is slow); 100x and
#: its fallback get the ``timeout`` passed to :func:`run` (~10 minutes).
SMALL_SIZE_TIMEOUT = 2400.0


def fallback_size(results: list[dict], timeout: float) -> Size | None:
    """When 100x does not fit in ``timeout``: the largest scale that should, extrapolated linearly
    from the largest finished one-quarter size (with a 30 % margin), rounded down to 20/30/50..."""
    done = [r for r in results if r["quarters"] == 1 and r["pipeline"].get("exit_code") == 0]
    if not done:
        return None
    ref = max(done, key=lambda r: r["scale"])
    per_scale = ref["pipeline"]["process_wall_s"] / ref["scale"]
    fits = int(timeout * 0.7 / per_scale)
    for scale in (90, 80, 70, 60, 50, 40, 30, 20):
        if scale <= fits and scale > ref["scale"]:
            return Size(f"{scale}x", 1, scale)
    return None


def prepare(size: Size, settings: Settings, work: Path) -> dict:
    """Publish the size's events to its own topic; write the same input for the baseline:
    the raw messages (e2e) and the reports flattened to Parquet."""
    batch = simulate(SEED, AS_OF, size.profile)
    started = time.perf_counter()
    encoded, targets = encode_batch(batch)
    encode_s = time.perf_counter() - started
    ensure_topic(settings)
    started = time.perf_counter()
    send_batch(settings, encoded, targets)
    send_s = time.perf_counter() - started
    write_messages(work / "messages.bin", [v for _, v in encoded + targets])
    table = flatten(batch.reports)
    pq.write_table(table, work / "values.parquet")
    return {"reports": len(batch.reports), "corrupt": len(batch.corrupt), "target_plans": len(targets),
            "value_rows": table.num_rows,
            "periods": [p.id for p in batch.periods], "encode_s": encode_s, "send_s": send_s}


def run_pipeline_worker(settings: Settings, periods: list[str], work: Path, timeout: float, scale: int = 1,
                        profile: bool = False, tag: str = "pipeline", tag_call_sites: bool = False,
                        spark: dict[str, object] | None = None) -> dict:
    """One run of :mod:`bench.pipeline_worker`; ``spark``: settings overrides for its session (the
    scale benchmark's standalone master)."""
    var_dir = work / f"{tag}-var"
    config = {"var_dir": str(var_dir), "bootstrap": settings.kafka_bootstrap, "topic": settings.topic_reports,
              # The broker's CA, the pipeline's password and the key registry stay those of the benchmark's deployment.
              "settings": {"kafka_ca_file": str(settings.ca_file), "kafka_credentials_dir": str(settings.credentials_dir),
                           "key_registry_file": str(settings.key_registry), **(spark or {})},
              "topic_targets": settings.topic_targets, "periods": periods, "scale": scale, "result": str(work / f"{tag}-result.json"),
              "event_log_dir": str(work / f"{tag}-eventlog"),
              "dump_gold": str(work / f"{tag}-gold.json")}
    if profile:
        config["profile_dir"] = str(work / f"{tag}-profile")
    if tag_call_sites:
        config["tag_call_sites"] = True
    Path(config["event_log_dir"]).mkdir(parents=True, exist_ok=True)
    config_path = work / f"{tag}-config.json"
    config_path.write_text(json.dumps(config))
    code, wall, sampled = run_measured([PYTHON, "-m", "bench.pipeline_worker", str(config_path)], timeout,
                                       log_path=work / f"{tag}.log")
    out: dict = {"exit_code": code, "process_wall_s": wall, "peak_rss_bytes": sampled.peak,
                 "cpu_s": sampled.cpu_seconds, "mean_load": sampled.mean_load, "timeout_s": timeout,
                 "work_dir": str(work), "config": config}
    if code == 0:
        out.update(json.loads(Path(config["result"]).read_text()))
    return out


def run_duckdb_worker(mode: str, work: Path, timeout: float, periods: list[str], scale: int) -> dict:
    config = {"mode": mode, "periods": periods, "scale": scale, "parquet": str(work / "values.parquet"), "messages": str(work / "messages.bin"),
              "result": str(work / f"duckdb-{mode}-result.json"), "dump": str(work / f"duckdb-{mode}-rows.json")}
    config_path = work / f"duckdb-{mode}-config.json"
    config_path.write_text(json.dumps(config))
    code, wall, sampled = run_measured([PYTHON, "-m", "bench.duckdb_worker", str(config_path)], timeout,
                                       log_path=work / f"duckdb-{mode}.log")
    out: dict = {"exit_code": code, "process_wall_s": wall, "peak_rss_bytes": sampled.peak,
                 "cpu_s": sampled.cpu_seconds, "mean_load": sampled.mean_load}
    if code == 0:
        out.update(json.loads(Path(config["result"]).read_text()))
    return out


def compare_gold(pipeline_gold: Path, duckdb_rows: Path) -> dict:
    """Do the pipeline's gold values and the baseline's rows agree (same keys, same values)?"""
    def keyed(rows):
        return {(r[0], r[1], r[2], r[3]): r[4:] for r in rows}

    gold = keyed(json.loads(pipeline_gold.read_text()))
    base = keyed(json.loads(duckdb_rows.read_text()))
    common = gold.keys() & base.keys()
    worst, differing = 0.0, 0
    for key in common:
        row_worst = 0.0
        for a, b in zip(gold[key], base[key]):
            if a is None or b is None:
                row_worst = row_worst if a == b else float("inf")
                continue
            row_worst = max(row_worst, abs(a - b) / max(abs(a), abs(b), 1e-12))
        worst = max(worst, row_worst)
        differing += row_worst > 1e-9
    return {"gold_rows": len(gold), "baseline_rows": len(base), "matching_keys": len(common),
            "only_in_gold": len(gold.keys() - base.keys()), "only_in_baseline": len(base.keys() - gold.keys()),
            "rows_differing": differing, "max_relative_difference": worst}


def run_size(size: Size, settings: Settings, work_root: Path, timeout: float, log=print) -> dict:
    work = work_root / f"pipeline-{size.name}"
    work.mkdir(parents=True, exist_ok=True)
    topic_settings = with_topic(settings, f"pipeline-{size.name}")
    log(f"  [{size.name}] simulating and publishing {size.label} ...")
    data = prepare(size, topic_settings, work)
    log(f"  [{size.name}] {data['reports']:,} reports ({data['value_rows']:,} value rows) on "
        f"{topic_settings.topic_reports}; running the pipeline (limit {timeout:.0f} s) ...")
    pipeline = run_pipeline_worker(topic_settings, data["periods"], work, timeout, scale=size.scale)
    result = {"size": size.name, "label": size.label, "quarters": size.quarters, "scale": size.scale,
              "input": data, "pipeline": pipeline}
    if pipeline["exit_code"] != 0:
        log(f"  [{size.name}] pipeline {'timed out' if pipeline['exit_code'] is None else 'failed'} "
            f"after {pipeline['process_wall_s']:.0f} s (log: {work / 'pipeline.log'})")
        return result
    log(f"  [{size.name}] pipeline {pipeline['pipeline_s']:.1f} s, peak {pipeline['peak_rss_bytes'] / 2**20:,.0f} MiB;"
        " running the DuckDB baseline ...")
    spark = sparklog.breakdown(Path(pipeline["config"]["event_log_dir"]), pipeline["steps"])
    for part in spark.values():  # the timed runs keep the five biggest call sites per stage
        part["by_site"] = dict(list(part["by_site"].items())[:5])
    result["spark"] = spark
    result["duckdb_parquet"] = run_duckdb_worker("parquet", work, timeout, data["periods"], size.scale)
    result["duckdb_e2e"] = run_duckdb_worker("e2e", work, timeout, data["periods"], size.scale)
    if result["duckdb_parquet"]["exit_code"] == 0:
        result["agreement"] = compare_gold(work / "pipeline-gold.json", work / "duckdb-parquet-rows.json")
    return result


def run(settings: Settings, work_root: Path, sizes: list[str], timeout: float = 660.0, log=print) -> dict:
    results = []
    for name in sizes:
        size = SIZES[name]
        limit = timeout if size.scale >= 100 else max(timeout, SMALL_SIZE_TIMEOUT)
        result = run_size(size, settings, work_root, limit, log)
        results.append(result)
        if result["pipeline"]["exit_code"] is None and size.scale >= 100:
            fallback = fallback_size(results, timeout)
            if fallback is None:
                log(f"  {size.name} did not finish within {timeout:.0f} s; no smaller size is expected to fit either")
                continue
            log(f"  {size.name} did not finish within {timeout:.0f} s; measuring {fallback.name} instead")
            results.append(run_size(fallback, settings, work_root, timeout, log))
    return {"sizes": results, "timeout_s": timeout, "small_size_timeout_s": SMALL_SIZE_TIMEOUT}


if __name__ == "__main__":  # pragma: no cover - use bench.run
    sys.exit("use: python -m bench.run --only pipeline")
