"""Run health: consumer lag from a checkpoint's offset log, run summaries, terminal output."""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

import pytest

from readiness.orchestration import run_health as rh

UTC = timezone.utc
TOPIC = "readiness.report-submissions.v1"
TARGETS = "readiness.target-plans.v1"

# What Spark 4.0 writes to <checkpoint>/offsets/<batch>: version, batch metadata, one line per source.
OFFSETS_1 = (
    'v1\n'
    '{"batchWatermarkMs":0,"batchTimestampMs":1790000000000,"conf":{"spark.sql.shuffle.partitions":"4"}}\n'
    '{"readiness.report-submissions.v1":{"2":30,"5":12,"4":0,"1":7,"3":25,"0":41},'
    '"readiness.target-plans.v1":{"0":3,"1":0}}\n'
)
OFFSETS_2 = OFFSETS_1.replace('"0":41', '"0":50')


def checkpoint(tmp_path: Path, offsets: dict[int, str], commits: list[int] | None) -> Path:
    root = tmp_path / "checkpoints" / "ingest_reports"
    (root / "offsets").mkdir(parents=True)
    for batch, text in offsets.items():
        (root / "offsets" / str(batch)).write_text(text)
    (root / "offsets" / ".1.crc").write_text("")  # Hadoop's checksum files are not batches
    if commits is not None:
        (root / "commits").mkdir()
        for batch in commits:
            (root / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}\n')
    return root


def test_parse_offset_log():
    assert rh.parse_offset_log(OFFSETS_1) == {
        TOPIC: {0: 41, 1: 7, 2: 30, 3: 25, 4: 0, 5: 12},
        TARGETS: {0: 3, 1: 0},
    }
    assert rh.parse_offset_log('v1\n{"batchWatermarkMs":0}\n-\n') == {}
    with pytest.raises(ValueError):
        rh.parse_offset_log('{"a": 1}')


def test_committed_offsets_take_the_latest_committed_batch(tmp_path):
    # Batch 2 is planned (offsets/2 written) but not committed: its offsets are not yet in bronze.
    root = checkpoint(tmp_path, {0: OFFSETS_1.replace('"0":41', '"0":0'), 1: OFFSETS_1, 2: OFFSETS_2}, commits=[0, 1])
    assert rh.committed_offsets(root)[TOPIC][0] == 41
    (root / "commits" / "2").write_text("v1\n{}\n")
    assert rh.committed_offsets(root)[TOPIC][0] == 50


def test_committed_offsets_without_commits_dir_or_checkpoint(tmp_path):
    assert rh.committed_offsets(checkpoint(tmp_path, {0: OFFSETS_1, 1: OFFSETS_2}, commits=None))[TOPIC][0] == 50
    assert rh.committed_offsets(tmp_path / "nowhere") == {}


def test_consumer_lag_is_end_minus_committed(tmp_path):
    committed = rh.committed_offsets(checkpoint(tmp_path, {0: OFFSETS_1}, commits=[0]))
    end = {TOPIC: {0: 41, 1: 9, 2: 30, 3: 25, 4: 4, 5: 12, 6: 5}, TARGETS: {0: 3, 1: 0}}
    beginning = {TOPIC: {6: 2}}
    assert rh.consumer_lag(end, committed, beginning) == {
        f"{TOPIC}:0": 0, f"{TOPIC}:1": 2, f"{TOPIC}:2": 0, f"{TOPIC}:3": 0, f"{TOPIC}:4": 4, f"{TOPIC}:5": 0,
        f"{TOPIC}:6": 3,  # a partition the checkpoint never read: from its beginning offset (2) to 5
        f"{TARGETS}:0": 0, f"{TARGETS}:1": 0,
    }
    assert rh.consumer_lag({TOPIC: {0: 10}}, {}) == {f"{TOPIC}:0": 10}  # nothing ingested yet


INGEST = {"events_in": 8, "bronze_rows": 6, "target_plans": 1, "dead_letters": 1, "batches": 1,
          "periods": ["2026Q3", "2026Q2"], "delta_versions": {"bronze_report_events": 3, "bronze_dead_letters": 1}}
VALIDATE_Q3 = {"events_in": 5, "events_accepted": 4, "events_quarantined": 1, "rows_in": 9, "period_id": "2026Q3",
               "delta_versions": {"silver_indicator_values": 2}}
PUBLISH_Q3 = {"gold_values": 6, "period_id": "2026Q3", "delta_versions": {"gold_indicator_values": 4}}


def test_summarise_a_period_pipeline_run():
    summary = rh.summarise_run({"ingest_reports": INGEST, "validate_batch": VALIDATE_Q3, "publish_tables": PUBLISH_Q3})
    assert summary == {
        "events_in": 8, "bronze_rows": 6, "dead_letters": 1,
        "events_validated": 5, "events_accepted": 4, "events_quarantined": 1,
        "periods": ["2026Q2", "2026Q3"],
        "delta_versions": {"bronze_dead_letters": 1, "bronze_report_events": 3, "gold_indicator_values": 4,
                           "silver_indicator_values": 2},
    }


def test_summarise_mapped_refreshes_and_skipped_tasks():
    refresh_q2 = {"period_id": "2026Q2", "delta_versions": {"silver_indicator_values": 5},
                  "validate": {"events_in": 2, "events_accepted": 2, "events_quarantined": 0, "period_id": "2026Q2"},
                  "publish": {"gold_values": 2, "period_id": "2026Q2"}}
    refresh_q3 = {"period_id": "2026Q3", "delta_versions": {"silver_indicator_values": 3},
                  "validate": VALIDATE_Q3, "publish": PUBLISH_Q3}
    summary = rh.summarise_run({"find_changed_periods": ["2026Q3", "2026Q2"], "refresh_period": [refresh_q2, refresh_q3],
                                "skipped_task": None})
    assert (summary["events_in"], summary["events_validated"], summary["events_accepted"],
            summary["events_quarantined"]) == (0, 7, 6, 1)
    assert summary["periods"] == ["2026Q2", "2026Q3"]
    assert summary["delta_versions"] == {"gold_indicator_values": 4, "silver_indicator_values": 5}  # highest wins


@pytest.mark.parametrize("states, expected", [
    ({"a": "success", "b": "skipped"}, "success"),
    ({"a": "success", "b": "failed"}, "failed"),
    ({"a": "upstream_failed"}, "failed"),
    ({"a": "success", "b": "running"}, "incomplete"),
    ({}, "success"),
])
def test_run_state(states, expected):
    assert rh.run_state(states) == expected


def test_run_row():
    row = rh.run_row(run_id="manual__1", dag_id="readiness_period_pipeline",
                     started_at=datetime(2026, 9, 21, 1, 0, tzinfo=UTC), ended_at=datetime(2026, 9, 21, 1, 3, 30, tzinfo=UTC),
                     xcoms={"ingest_reports": INGEST, "validate_batch": VALIDATE_Q3},
                     task_states={"ingest_reports": "success", "validate_batch": "success"},
                     consumer_lag={f"{TOPIC}:0": 0})
    assert row["duration_s"] == 210.0
    assert row["state"] == "success" and row["periods"] == ["2026Q2", "2026Q3"]
    assert row["task_states"] == {"ingest_reports": "success", "validate_batch": "success"}
    columns = [c.split(" ")[0] for c in rh.OPS_COLUMNS.split(", ")]
    assert sorted(row) == sorted(columns)


def test_format_runs_and_freshness():
    runs = [{
        "run_id": "manual__2026-09-21T01:00:00+00:00", "dag_id": "readiness_period_pipeline", "state": "success",
        "periods": ["2026Q3"], "started_at": datetime(2026, 9, 21, 1, 0, tzinfo=UTC), "duration_s": 95.2,
        "events_in": 8, "events_accepted": 4, "events_quarantined": 1, "dead_letters": 1,
        "consumer_lag": {f"{TOPIC}:1": 2, f"{TOPIC}:0": 0, f"{TARGETS}:0": 0},
        "delta_versions": {"silver_indicator_values": 2, "bronze_report_events": 3},
    }]
    text = rh.format_runs(runs)
    lines = text.splitlines()
    assert lines[0] == "Pipeline runs (ops_pipeline_runs, latest 1; times Asia/Ho_Chi_Minh)"
    assert lines[3].startswith("2026-09-21 08:00  readiness_period_pipeline   success    2026Q3")
    assert lines[3].split()[-7:] == ["8", "4", "1", "1", "2", "95s", "manual__2026-09-21T01:00:00+00:00"]
    assert lines[4].strip() == f"lag per partition: {TOPIC} [0=0 1=2]; {TARGETS} [0=0]"
    assert lines[5].strip() == "Delta versions written: bronze_report_events@3 silver_indicator_values@2"
    assert rh.format_runs([]) == "Pipeline runs: none recorded yet in ops_pipeline_runs."

    now = datetime(2026, 9, 22, 3, 30, tzinfo=UTC)
    fresh = rh.format_freshness([
        {"province_code": "38", "province_name": "Thanh Hóa", "last_event_at": datetime(2026, 9, 21, 1, 0, tzinfo=UTC),
         "events": 3, "last_accepted_at": datetime(2026, 9, 18, 3, 0, tzinfo=UTC), "last_accepted_period": "2026Q3"},
        {"province_code": "01", "province_name": "Hà Nội", "last_event_at": None, "events": 0,
         "last_accepted_at": None, "last_accepted_period": None},
    ], now).splitlines()
    assert fresh[0] == "Freshness per province (times Asia/Ho_Chi_Minh, now 2026-09-22 10:30)"
    assert fresh[3].split() == ["38", "Thanh", "Hóa", "2026-09-21", "08:00", "1d", "02h", "3", "2026-09-18", "10:00",
                                "2026Q3", "4d", "00h"]
    assert fresh[4].split() == ["01", "Hà", "Nội", "never", "-", "0", "never", "-", "-"]


def test_register_adds_the_status_subcommand():
    parser = argparse.ArgumentParser(prog="readiness")
    sub = parser.add_subparsers(dest="command", required=True)
    rh.register(sub)
    args = parser.parse_args(["status", "--runs", "5", "--dag", "readiness_ingest"])
    assert (args.command, args.runs, args.dag, args.no_freshness, args.func) == (
        "status", 5, "readiness_ingest", False, rh.cmd_status)
