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


# 10 offsets read = 6 report rows + 1 plan + 1 dead letter + 2 already in bronze (read again).
INGEST = {"events_in": 10, "bronze_rows": 6, "target_plans": 1, "dead_letters": 1, "already_in_bronze": 2,
          "batches": 1, "checkpoint": "set_aside",
          "periods": ["2026Q3", "2026Q2"], "delta_versions": {"bronze_report_events": 3, "bronze_dead_letters": 1}}
# 7 bronze events = 3 accepted + 1 quarantined + 2 held back + 1 exact re-delivery.
VALIDATE_Q3 = {"events_in": 7, "events_accepted": 3, "events_quarantined": 1, "events_held_back": 2,
               "events_duplicate": 1, "rows_in": 9, "period_id": "2026Q3",
               "held_back_provinces": [{"province_code": "38", "events": 12, "quarantined": 7, "share": 0.5833,
                                        "max_share": 0.5, "events_held_back": 2}],
               "delta_versions": {"silver_indicator_values": 2}}
PUBLISH_Q3 = {"gold_values": 6, "period_id": "2026Q3", "delta_versions": {"gold_indicator_values": 4}}


def test_summarise_a_period_pipeline_run():
    summary = rh.summarise_run({"ingest_reports": INGEST, "validate_batch": VALIDATE_Q3, "publish_tables": PUBLISH_Q3})
    assert summary == {
        "events_in": 10, "bronze_rows": 6, "target_plans": 1, "dead_letters": 1, "already_in_bronze": 2,
        "events_validated": 7, "events_accepted": 3, "events_quarantined": 1, "events_held_back": 2,
        "events_duplicate": 1,
        "periods": ["2026Q2", "2026Q3"],
        "delta_versions": {"bronze_dead_letters": 1, "bronze_report_events": 3, "gold_indicator_values": 4,
                           "silver_indicator_values": 2},
    }


def reconciles(row) -> bool:
    return (row["events_in"] == row["bronze_rows"] + row["target_plans"] + row["dead_letters"]
            + row["already_in_bronze"]
            and row["events_validated"] == row["events_accepted"] + row["events_quarantined"]
            + row["events_held_back"] + row["events_duplicate"])


def test_summarised_counts_reconcile():
    assert reconciles(rh.summarise_run({"ingest_reports": INGEST, "validate_batch": VALIDATE_Q3}))


def test_summarise_mapped_refreshes_and_skipped_tasks():
    # Q2's result is from before validation counted held back and duplicate events: they count 0.
    refresh_q2 = {"period_id": "2026Q2", "delta_versions": {"silver_indicator_values": 5},
                  "validate": {"events_in": 2, "events_accepted": 2, "events_quarantined": 0, "period_id": "2026Q2"},
                  "publish": {"gold_values": 2, "period_id": "2026Q2"}}
    refresh_q3 = {"period_id": "2026Q3", "delta_versions": {"silver_indicator_values": 3},
                  "validate": VALIDATE_Q3, "publish": PUBLISH_Q3}
    summary = rh.summarise_run({"find_changed_periods": ["2026Q3", "2026Q2"], "refresh_period": [refresh_q2, refresh_q3],
                                "skipped_task": None})
    assert (summary["events_in"], summary["events_validated"], summary["events_accepted"],
            summary["events_quarantined"], summary["events_held_back"], summary["events_duplicate"]) == (0, 9, 5, 1, 2, 1)
    assert reconciles(summary)
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
    assert {k: row[k] for k in rh.COUNT_FIELDS} == {
        "events_in": 10, "bronze_rows": 6, "target_plans": 1, "dead_letters": 1, "already_in_bronze": 2,
        "events_validated": 7, "events_accepted": 3, "events_quarantined": 1, "events_held_back": 2,
        "events_duplicate": 1}
    assert reconciles(row)


def test_format_runs_and_freshness():
    runs = [{
        "run_id": "manual__2026-09-21T01:00:00+00:00", "dag_id": "readiness_period_pipeline", "state": "success",
        "periods": ["2026Q3"], "started_at": datetime(2026, 9, 21, 1, 0, tzinfo=UTC), "duration_s": 95.2,
        "events_in": 10, "bronze_rows": 6, "target_plans": 1, "dead_letters": 1, "already_in_bronze": 2,
        "events_validated": 7, "events_accepted": 3, "events_quarantined": 1, "events_held_back": 2,
        "events_duplicate": 1,
        "consumer_lag": {f"{TOPIC}:1": 2, f"{TOPIC}:0": 0, f"{TARGETS}:0": 0},
        "delta_versions": {"silver_indicator_values": 2, "bronze_report_events": 3},
    }]
    text = rh.format_runs(runs)
    lines = text.splitlines()
    assert lines[0] == "Pipeline runs (ops_pipeline_runs, latest 1; times Asia/Ho_Chi_Minh)"
    assert lines[3].startswith("2026-09-21 08:00  readiness_period_pipeline   success    2026Q3")
    assert lines[1].split()[-10:] == ["in", "accepted", "quarant.", "held", "dup.", "dead", "lag", "took", "run", "id"]
    # in, accepted, quarantined, held back, duplicate, dead, lag, took, run id
    assert lines[3].split()[-9:] == ["10", "3", "1", "2", "1", "1", "2", "95s", "manual__2026-09-21T01:00:00+00:00"]
    assert lines[4].strip() == ("counts: ingested 10 = 6 reports + 1 plans + 1 dead + 2 already in bronze; "
                                "validated 7 = 3 accepted + 1 quarantined + 2 held back + 1 duplicate")
    assert lines[5].strip() == f"lag per partition: {TOPIC} [0=0 1=2]; {TARGETS} [0=0]"
    assert lines[6].strip() == "Delta versions written: bronze_report_events@3 silver_indicator_values@2"
    assert rh.format_runs([]) == "Pipeline runs: none recorded yet in ops_pipeline_runs."
    # A row from before the ingest and validation counted re-reads, held back and duplicate events.
    older = {k: v for k, v in runs[0].items() if k not in ("target_plans", "already_in_bronze", "events_held_back",
                                                           "events_duplicate")}
    assert rh.format_runs([older]).splitlines()[4].strip() == (
        "counts: ingested 10 = 6 reports + 0 plans + 1 dead + 0 already in bronze; "
        "validated 7 = 3 accepted + 1 quarantined + 0 held back + 0 duplicate")

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


# ops_pipeline_runs as written before it had target_plans, already_in_bronze, events_held_back, events_duplicate.
OLD_OPS_COLUMNS = (
    "run_id string, dag_id string, state string, periods array<string>, "
    "started_at timestamp, ended_at timestamp, duration_s double, "
    "events_in long, bronze_rows long, dead_letters long, "
    "events_validated long, events_accepted long, events_quarantined long, "
    "consumer_lag map<string,long>, delta_versions map<string,long>, task_states map<string,string>"
)


def test_rows_written_before_the_new_counts_still_read_and_merge(spark, tmp_path):
    from readiness.settings import load_settings

    settings = load_settings(env="ci", var_dir=tmp_path)
    started, ended = datetime(2026, 9, 20, 1, 0, tzinfo=UTC), datetime(2026, 9, 20, 1, 2, tzinfo=UTC)
    old = ("scheduled__1", "readiness_ingest", "success", ["2026Q3"], started, ended, 120.0, 8, 6, 1, 0, 0, 0,
           {f"{TOPIC}:0": 0}, {"bronze_report_events": 1}, {"ingest_reports": "success"})
    spark.createDataFrame([old], OLD_OPS_COLUMNS).write.format("delta").save(settings.table_path(rh.OPS_RUNS))

    [before] = rh.recent_runs(settings)
    assert {k: before[k] for k in rh.COUNT_FIELDS} == {
        "events_in": 8, "bronze_rows": 6, "target_plans": 0, "dead_letters": 1, "already_in_bronze": 0,
        "events_validated": 0, "events_accepted": 0, "events_quarantined": 0, "events_held_back": 0,
        "events_duplicate": 0}

    new = rh.run_row(run_id="manual__2", dag_id="readiness_period_pipeline",
                     started_at=datetime(2026, 9, 21, 1, 0, tzinfo=UTC), ended_at=datetime(2026, 9, 21, 1, 3, tzinfo=UTC),
                     xcoms={"ingest_reports": INGEST, "validate_batch": VALIDATE_Q3},
                     task_states={"ingest_reports": "success", "validate_batch": "success"}, consumer_lag={})
    rh.record_run(settings, new)  # MERGE into the old table: it gains the new columns
    rh.record_run(settings, {**before, "state": "failed"})  # and an old row read back MERGEs again
    assert set(spark.read.format("delta").load(settings.table_path(rh.OPS_RUNS)).columns) >= set(rh.COUNT_FIELDS)
    runs = {r["run_id"]: r for r in rh.recent_runs(settings)}
    assert sorted(runs) == ["manual__2", "scheduled__1"]
    assert {k: runs["manual__2"][k] for k in rh.COUNT_FIELDS} == {k: new[k] for k in rh.COUNT_FIELDS}
    assert reconciles(runs["manual__2"])
    assert runs["scheduled__1"]["state"] == "failed"
    assert (runs["scheduled__1"]["target_plans"], runs["scheduled__1"]["events_duplicate"]) == (0, 0)


def test_register_adds_the_status_subcommand():
    parser = argparse.ArgumentParser(prog="readiness")
    sub = parser.add_subparsers(dest="command", required=True)
    rh.register(sub)
    args = parser.parse_args(["status", "--runs", "5", "--dag", "readiness_ingest"])
    assert (args.command, args.runs, args.dag, args.no_freshness, args.func) == (
        "status", 5, "readiness_ingest", False, rh.cmd_status)


def test_a_register_created_meanwhile_by_another_run_is_merged_into(tmp_path, monkeypatch):
    """Two DAG runs ending together: the one that finds no table and then loses the race to create it
    MERGEs into the other's table instead of failing."""
    import deltalake

    from readiness.settings import load_settings

    settings = load_settings(env="ci", var_dir=tmp_path)
    ended = datetime(2026, 9, 21, 1, 3, tzinfo=UTC)
    first, second = (rh.run_row(run_id=run_id, dag_id="readiness_ingest", started_at=datetime(2026, 9, 21, 1, 0, tzinfo=UTC),
                                ended_at=ended, xcoms={"ingest_reports": INGEST},
                                task_states={"ingest_reports": "success"}, consumer_lag={f"{TOPIC}:0": 0})
                     for run_id in ("scheduled__1", "scheduled__2"))
    rh.record_run(settings, first)
    opened = deltalake.DeltaTable
    calls = []

    def not_there_the_first_time(path, *args, **kwargs):  # as if the other run created it just after
        calls.append(path)
        if len(calls) == 1:
            raise deltalake.exceptions.TableNotFoundError(f"no table at {path}")
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(deltalake, "DeltaTable", not_there_the_first_time)
    rh.record_run(settings, second)
    monkeypatch.undo()
    rows = deltalake.DeltaTable(str(settings.table_path(rh.OPS_RUNS))).to_pyarrow_table(columns=["run_id"]).to_pylist()
    assert sorted(r["run_id"] for r in rows) == ["scheduled__1", "scheduled__2"]
    assert len(calls) == 2
