"""Freshness: seconds from publishing a report to its province's row changing in the gold tables,
with ingest + validate + aggregate running in a loop (the scheduled mode is not built yet; the loop
in :mod:`bench.freshness_worker` stands in for it). The topic holds one national period; each sample
waits a random time (so publishes fall at random points of the loop's cycle), publishes a corrected
revision of one unit's report that moves its province's ``computers_per_100_staff`` numerator sum,
and waits for the loop iteration whose gold commit shows the new value.

Measured per sample: publish -> gold commit of ``gold_indicator_values`` (the Delta commit
timestamp), and publish -> end of that iteration (when a reader sees the row).

    python -m bench.run --only freshness [--quick]
"""
from __future__ import annotations

import json
import random
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

from readiness.encoding import TARGET_PLAN, encode
from readiness.producer import ReportProducer
from readiness.reference import indicator_by_code
from readiness.settings import Settings
from readiness.simulate import SimulationProfile, simulate

from bench.common import AS_OF, PYTHON, PROJECT_ROOT, SEED, kill_group, ensure_topic, median, with_topic

INDICATOR = "computers_per_100_staff"


def _clean(report: dict) -> bool:
    """A report every row rule accepts (so its correction is accepted too) that reports INDICATOR."""
    catalogue = indicator_by_code()
    codes = [v["indicator_code"] for v in report["values"]]
    if INDICATOR not in codes or len(codes) != len(set(codes)):
        return False
    for v in report["values"]:
        ind = catalogue.get(v["indicator_code"])
        if ind is None or (v["numerator"] or 0) < 0 or (v["denominator"] or 0) < 0:
            return False
        if ind.numerator_at_most_denominator and v["numerator"] is not None and v["numerator"] > v["denominator"]:
            return False
    return True


def corrections(reports: list[dict], count: int, rng: random.Random) -> list[dict]:
    """One correction per province (distinct provinces), a higher revision than any simulated,
    submitted a day after the original (still inside the period's data window)."""
    by_province: dict[str, dict] = {}
    for r in reports:
        if r["revision"] == 0 and _clean(r):
            by_province.setdefault(r["province_code"], r)
    chosen = rng.sample(sorted(by_province), count)
    out = []
    for n, province in enumerate(chosen):
        original = by_province[province]
        fixed = {**original, "values": [dict(v) for v in original["values"]]}
        fixed["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        fixed["revision"] = 100 + n
        fixed["submitted_at"] = original["submitted_at"] + timedelta(days=1)
        for v in fixed["values"]:
            if v["indicator_code"] == INDICATOR:
                # One computer fewer (or more): stays inside the catalogue's range, moves the province sum.
                v["numerator"] = v["numerator"] - 1.0 if v["numerator"] >= 1 else v["numerator"] + 1.0
        out.append(fixed)
    return out


def _read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for(path: Path, predicate, timeout: float, proc: subprocess.Popen) -> dict | None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for entry in _read_log(path):
            if predicate(entry):
                return entry
        if proc.poll() is not None:
            raise RuntimeError(f"the loop exited with code {proc.returncode}; see {path.parent / 'loop.log'}")
        time.sleep(0.5)
    return None


def run(settings: Settings, work_root: Path, samples: int = 4, interval_s: float = 60.0,
        sample_timeout_s: float = 900.0, log=print) -> dict:
    work = work_root / "freshness"
    work.mkdir(parents=True, exist_ok=True)
    topic = with_topic(settings, "freshness")
    ensure_topic(topic)
    batch = simulate(SEED, AS_OF, SimulationProfile(quarters=1, half_years=0, years=0))
    period = batch.periods[0].id
    encoded = [(r["province_code"], encode(r)) for r in batch.reports] + list(batch.corrupt)
    targets = [(t["province_code"], encode(t, TARGET_PLAN)) for t in getattr(batch, "targets", [])]
    with ReportProducer(topic) as producer:
        sent = producer.send_raw(topic.topic_reports, encoded)
        if targets:
            sent = sent.merge(producer.send_raw(topic.topic_targets, targets))
    if sent.not_acknowledged:
        raise RuntimeError(f"{sent.not_acknowledged} events were not acknowledged")
    rng = random.Random(SEED)
    fixes = corrections(batch.reports, samples, rng)

    loop_log, stop_file = work / "iterations.jsonl", work / "stop"
    config = {"var_dir": str(work / "var"), "bootstrap": topic.kafka_bootstrap, "topic": topic.topic_reports,
              "topic_targets": topic.topic_targets, "period": period, "indicator": INDICATOR,
              "interval_s": interval_s, "stop_file": str(stop_file), "log": str(loop_log),
              "max_s": sample_timeout_s * (samples + 1) + 600}
    (work / "config.json").write_text(json.dumps(config))
    log(f"  loop: ingest + validate + aggregate {period} every {interval_s:.0f} s (fixed rate); "
        f"{len(batch.reports):,} reports on {topic.topic_reports}")
    with (work / "loop.log").open("ab") as out:
        proc = subprocess.Popen([PYTHON, "-m", "bench.freshness_worker", str(work / "config.json")],
                                cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    results = []
    try:
        first = _wait_for(loop_log, lambda e: True, sample_timeout_s, proc)
        if first is None:
            raise RuntimeError(f"the loop's first iteration did not finish within {sample_timeout_s:.0f} s")
        log(f"  first (cold) iteration took {first['end'] - first['start']:.1f} s")
        for n, fix in enumerate(fixes):
            province = fix["province_code"]
            time.sleep(rng.uniform(0, interval_s))
            before = _read_log(loop_log)[-1]["values"].get(province)
            published = time.time()
            with ReportProducer(topic) as producer:
                result = producer.publish_reports([fix])
            acked = time.time()
            if result.not_acknowledged:
                raise RuntimeError(f"correction not acknowledged: {result.failures}")
            hit = _wait_for(loop_log, lambda e, p=province, b=before, t=published:
                            e["end"] > t and e["values"].get(p) != b, sample_timeout_s, proc)
            if hit is None:
                results.append({"sample": n, "province": province, "published": published, "timed_out": True})
                log(f"  sample {n + 1}: no gold change within {sample_timeout_s:.0f} s")
                continue
            entries = _read_log(loop_log)
            running = [e for e in entries if e["start"] <= published <= e["end"]]
            results.append({
                "sample": n, "province": province, "published": published, "ack_s": acked - published,
                "to_gold_commit_s": hit["gold_commit"] - published, "to_iteration_end_s": hit["end"] - published,
                "iteration": hit["iteration"], "iteration_s": hit["end"] - hit["start"],
                "published_during_iteration": running[0]["iteration"] if running else None,
                "old_value": before, "new_value": hit["values"].get(province)})
            log(f"  sample {n + 1}/{len(fixes)}: province {province}, publish -> gold commit "
                f"{hit['gold_commit'] - published:.1f} s (iteration {hit['iteration']})")
    finally:
        stop_file.touch()
        try:
            proc.wait(sample_timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(proc)
    iterations = _read_log(loop_log)
    warm = [e["end"] - e["start"] for e in iterations[1:]]
    done = [r for r in results if not r.get("timed_out")]
    return {
        "period": period, "interval_s": interval_s, "samples": results,
        "iterations": len(iterations),
        "cold_iteration_s": iterations[0]["end"] - iterations[0]["start"] if iterations else None,
        "warm_iteration_s": warm,
        "median_warm_iteration_s": median(warm) if warm else None,
        "median_to_gold_commit_s": median([r["to_gold_commit_s"] for r in done]) if done else None,
        "max_to_gold_commit_s": max(r["to_gold_commit_s"] for r in done) if done else None,
        "min_to_gold_commit_s": min(r["to_gold_commit_s"] for r in done) if done else None,
        "median_to_iteration_end_s": median([r["to_iteration_end_s"] for r in done]) if done else None,
    }
