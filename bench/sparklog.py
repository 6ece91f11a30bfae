"""Read a Spark event log (``spark.eventLog.enabled``) into job and stage timings, and split a
pipeline step's wall time into "a Spark job was running" and "only the driver was working"
(planning, Delta log reads and commits, py4j round trips, Python)."""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Job:
    id: int
    start: float  # epoch seconds
    end: float = 0.0
    site: str = ""
    stage_ids: list[int] = field(default_factory=list)


@dataclass
class Stage:
    id: int
    name: str
    start: float = 0.0
    end: float = 0.0
    tasks: int = 0
    run_ms: int = 0  # executor run time summed over tasks
    cpu_ms: float = 0.0
    gc_ms: int = 0
    python_init_ms: int = 0


def _files(log_dir: Path) -> list[Path]:
    return sorted(p for p in log_dir.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and not p.name.startswith("appstatus"))


def load(log_dir: Path) -> tuple[dict[int, Job], dict[int, Stage]]:
    jobs: dict[int, Job] = {}
    stages: dict[int, Stage] = {}
    for path in _files(log_dir):
        with path.open() as handle:
            for line in handle:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a log cut short by a killed process
                kind = event.get("Event")
                if kind == "SparkListenerJobStart":
                    props = event.get("Properties") or {}
                    site = props.get("callSite.short") or (event["Stage Infos"][0]["Stage Name"]
                                                           if event.get("Stage Infos") else "")
                    jobs[event["Job ID"]] = Job(event["Job ID"], event["Submission Time"] / 1000, site=short_site(site),
                                                stage_ids=list(event.get("Stage IDs", [])))
                elif kind == "SparkListenerJobEnd" and event["Job ID"] in jobs:
                    jobs[event["Job ID"]].end = event["Completion Time"] / 1000
                elif kind == "SparkListenerStageCompleted":
                    info = event["Stage Info"]
                    stage = stages.setdefault(info["Stage ID"], Stage(info["Stage ID"], info["Stage Name"]))
                    stage.start = info.get("Submission Time", 0) / 1000
                    stage.end = info.get("Completion Time", 0) / 1000
                    stage.tasks = info.get("Number of Tasks", 0)
                elif kind == "SparkListenerTaskEnd":
                    info = event.get("Task Info", {})
                    stage = stages.setdefault(event["Stage ID"], Stage(event["Stage ID"], ""))
                    metrics = event.get("Task Metrics") or {}
                    stage.run_ms += metrics.get("Executor Run Time", 0)
                    stage.cpu_ms += metrics.get("Executor CPU Time", 0) / 1e6
                    stage.gc_ms += metrics.get("JVM GC Time", 0)
                    for acc in info.get("Accumulables", []):
                        if acc.get("Name") in ("time to initialize Python workers", "time to start Python workers"):
                            stage.python_init_ms += int(acc.get("Update") or 0)
    return jobs, stages


def short_site(site: str) -> str:
    """Call sites without the checkout and site-packages prefixes."""
    for marker in ("/site-packages/", "/work/main/", "/readiness/"):
        if marker in site:
            head, _, tail = site.partition(" at ")
            if marker in tail:
                prefix = "readiness/" if marker == "/readiness/" else ""
                site = f"{head} at {prefix}{tail.rsplit(marker, 1)[1]}" if tail else site
    return site


def _union(intervals: list[tuple[float, float]]) -> float:
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def step_breakdown(jobs: dict[int, Job], stages: dict[int, Stage], start: float, end: float) -> dict:
    """Within [start, end]: seconds with at least one job running, the number of jobs, and the
    jobs' time (clipped to the window) and task time grouped by call site."""
    inside = [j for j in jobs.values() if j.end and j.start < end and j.end > start]
    clipped = [(max(j.start, start), min(j.end, end)) for j in inside]
    by_site: dict[str, dict[str, float]] = defaultdict(lambda: {"jobs": 0, "job_s": 0.0, "task_s": 0.0,
                                                                  "python_worker_init_s": 0.0})
    for job, (a, b) in zip(inside, clipped):
        entry = by_site[job.site]
        entry["jobs"] += 1
        entry["job_s"] += b - a
        for sid in job.stage_ids:
            if sid in stages:
                entry["task_s"] += stages[sid].run_ms / 1000
                entry["python_worker_init_s"] += stages[sid].python_init_ms / 1000
    busy = _union(clipped)
    return {"wall_s": end - start, "spark_jobs": len(inside), "jobs_running_s": busy,
            "driver_only_s": (end - start) - busy,
            "by_site": dict(sorted(by_site.items(), key=lambda kv: -kv[1]["job_s"]))}


def breakdown(log_dir: Path, steps: list[dict]) -> dict[str, dict]:
    """:func:`step_breakdown` for each pipeline stage (ingest, validate, aggregate), summed over
    its steps (one per period for validate and aggregate)."""
    jobs, stages = load(log_dir)
    result: dict[str, dict] = {}
    for step in steps:
        part = step_breakdown(jobs, stages, step["start"], step["end"])
        total = result.setdefault(step["stage"], {"wall_s": 0.0, "spark_jobs": 0, "jobs_running_s": 0.0,
                                                  "driver_only_s": 0.0, "by_site": {}})
        for key in ("wall_s", "spark_jobs", "jobs_running_s", "driver_only_s"):
            total[key] += part[key]
        for site, entry in part["by_site"].items():
            into = total["by_site"].setdefault(site, {k: 0 for k in entry})
            for k, v in entry.items():
                into[k] += v
    for total in result.values():
        total["by_site"] = dict(sorted(total["by_site"].items(), key=lambda kv: -kv[1]["job_s"]))
    return result
