"""The benchmark's own arithmetic and pages: scale rows kept across runs, the streaming percentile and
section."""
from __future__ import annotations

from bench import report
from bench.scale import merge_runs
from bench.streaming import _percentile


def section(when: str, sizes: list[dict]) -> dict:
    return {"measured_at": when, "duration_s": 60.0, "quick": False, "command": "cmd", "machine": {"logical_cpus": 2},
            "load_before": [0.5, 0.5, 0.5], "load_after": [1.5, 1.0, 0.5],
            "data": {"sizes": sizes, "crossover": "", "timeout_s": 1.0, "cluster": {}}}


def row(size: str, scale: int, local: float, cluster: float) -> dict:
    return {"size": size, "label": size, "scale": scale, "input": {"reports": scale},
            "local": {"pipeline_s": local}, "cluster": {"pipeline_s": cluster}, "ratio_cluster_local": cluster / local}


def test_a_scale_run_keeps_the_sizes_only_an_earlier_run_measured():
    earlier = section("2026-12-02T02:55:04", [row("period", 1, 60, 90), row("100x", 100, 200, 210)])
    latest = section("2026-12-07T16:00:00", [row("1000x", 1000, 2000, 1800), row("100x", 100, 190, 200)])
    merged = merge_runs(earlier, latest)
    assert [(r["size"], r["measured_at"], r["local"]["pipeline_s"]) for r in merged["data"]["sizes"]] == [
        ("period", "2026-12-02T02:55:04", 60), ("100x", "2026-12-07T16:00:00", 190),
        ("1000x", "2026-12-07T16:00:00", 2000)]
    assert merged["data"]["crossover"].startswith("the cluster was faster from 1000x on (cluster / local 0.90x)")
    assert merge_runs(None, latest)["data"]["sizes"][0]["size"] == "100x"


def test_nearest_rank_percentile():
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert _percentile(values, 0.95) == 19.0
    assert _percentile(values, 0.5) == 10.0
    assert _percentile([7.0], 0.95) == 7.0
    assert _percentile(values, 1.0) == 20.0


def test_the_streaming_section_sets_the_figures_against_the_scheduled_mode():
    samples = [{"burst": b, "province": f"{n:02d}", "to_gold_commit_s": 5.0 + b + n, "gold_version": 10 + b}
               for b in range(2) for n in range(3)]
    s = section("2026-12-07T16:00:00", [])
    s["data"] = {"mode": "streaming", "period": "2026Q3", "reports": 1108, "bursts": 2, "burst_size": 3,
                 "interval_s": 30.0, "trigger_s": 3.0, "samples": samples, "start_s": 20.0, "cold_s": 60.0,
                 "cold_batch_s": 35.0, "median_to_gold_commit_s": 7.5, "p95_to_gold_commit_s": 8.0,
                 "min_to_gold_commit_s": 5.0, "max_to_gold_commit_s": 8.0, "stop_s": 1.2, "exit_code": 0,
                 "batches": [{"events_in": 3, "duration_s": 6.0}, {"events_in": 0, "duration_s": 0.1},
                             {"events_in": 3, "duration_s": 7.0}]}
    text = "\n".join(report.streaming_section(s, {"mode": "scheduled", "median_to_gold_commit_s": 150.0}))
    assert "| 1 | 3 | 5.0 | 6.0 | 7.0 | 10 |" in text and "| 2 | 3 | 6.0 | 7.0 | 8.0 | 11 |" in text
    assert "median **7.5 s**, 95th percentile **8.0 s**" in text
    assert "streaming / scheduled **0.05x**" in text
    assert "2 batches with events (median 7.0 s each" in text
    assert "not measured in this run" in "\n".join(report.streaming_section(s, None))
