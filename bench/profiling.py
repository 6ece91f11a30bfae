"""Where the time goes in the slowest pipeline stage: a profiling run of the pipeline (a fresh
process, cProfile around each stage, Spark jobs named after the project code that triggered them)
read back as (1) the driver's Python profile and (2) Spark job timings by call site."""
from __future__ import annotations

import pstats
from pathlib import Path

from bench import sparklog
from bench.pipeline import run_pipeline_worker
from readiness.settings import Settings

#: cProfile entries that are the driver waiting for the JVM (py4j answers arrive on a socket).
WAITING = ("recv_into", "readline", "acquire", "wait")


def _short(path: str) -> str:
    for marker in ("/readiness/", "/great_expectations/", "/pydantic/", "/pyspark/", "/delta/", "/py4j/"):
        if marker in path:
            return marker.strip("/") + "/" + path.rsplit(marker, 1)[1]
    return path.rsplit("/", 1)[-1]


def python_profile(prof: Path, top: int = 12) -> dict:
    stats = pstats.Stats(str(prof))
    total = stats.total_tt  # type: ignore[attr-defined]
    waiting = 0.0
    py4j_calls = 0
    project, library, everything = [], [], []
    for (path, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if path == "~" and any(w in name for w in WAITING):
            waiting += tottime
        elif path.endswith("py4j/clientserver.py") and name == "send_command":
            py4j_calls += calls
        else:
            everything.append({"function": f"{_short(path)}:{line} {name}" if path != "~" else name,
                               "calls": calls, "self_s": tottime})
        entry = {"function": f"{_short(path)}:{line} {name}", "calls": calls, "cumulative_s": cumtime,
                 "self_s": tottime}
        if "/readiness/" in path and "/site-packages/" not in path:
            project.append(entry)
        elif "/great_expectations/" in path:
            library.append(entry)
    project.sort(key=lambda e: -e["cumulative_s"])
    library.sort(key=lambda e: -e["self_s"])
    everything.sort(key=lambda e: -e["self_s"])
    return {"profiled_s": total, "waiting_on_jvm_s": waiting, "python_s": total - waiting, "py4j_calls": py4j_calls,
            "top_self_time": everything[:8],
            "project_functions": project[:top], "gx_self_time": library[:top],
            "gx_self_total_s": sum(e["self_s"] for e in library)}


def run(settings: Settings, periods: list[str], work: Path, stage: str | None, timeout: float,
        scale: int = 1) -> dict:
    """Profile a pipeline run over the topic of ``settings`` (already filled by the timed run) and
    describe ``stage`` (default: the slowest stage of this run)."""
    result = run_pipeline_worker(settings, periods, work, timeout, scale=scale, profile=True, tag="profile",
                                 tag_call_sites=True)
    if result["exit_code"] != 0:
        return {"error": f"profiling run exited with {result['exit_code']}", "work_dir": str(work)}
    stages = result["stage_seconds"]
    stage = stage or max(stages, key=stages.get)
    spark = sparklog.breakdown(Path(result["config"]["event_log_dir"]), result["steps"])
    by_site = result.get("jvm_calls_by_stage", {}).get(stage, {})
    return {"stage": stage, "stage_seconds": stages, "pipeline_s": result["pipeline_s"],
            "spark": spark, "python": python_profile(Path(result["config"]["profile_dir"]) / f"{stage}.prof"),
            "jvm_calls": sum(by_site.values()),
            "jvm_calls_by_site": dict(sorted(by_site.items(), key=lambda kv: -kv[1])[:12])}
