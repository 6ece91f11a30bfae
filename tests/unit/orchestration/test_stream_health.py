"""The streaming service's health document: lag from a query's progress, the watchdog's verdicts and
alerts, the lines of ``readiness status``."""
from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

from readiness.orchestration import stream_health
from readiness.orchestration.stream_health import (
    partition_lag,
    process_alive,
    read_health,
    status_lines,
    verdict,
    write_health,
)
from readiness.settings import load_settings

NOW = datetime(2026, 12, 14, 3, 0, tzinfo=timezone.utc)


def document(**changes) -> dict:
    return {"pid": 4242, "state": "running", "started_at": (NOW - timedelta(hours=1)).isoformat(),
            "heartbeat_at": (NOW - timedelta(seconds=4)).isoformat(), "trigger_s": 3.0, "in_batch": None,
            "last_batch": None, "last_gold_commit": None, "lag": {}, "error": None, **changes}


def test_lag_per_partition_is_the_latest_offset_less_the_last_batch_end():
    progress = {"sources": [{"description": "KafkaV2[Subscribe[r,t]]",
                             "endOffset": json.dumps({"r": {"0": 10, "1": 7}, "t": {"0": 2}}),
                             "latestOffset": {"r": {"0": 15, "1": 7}, "t": {"0": 2}}}]}
    assert partition_lag(progress) == {"r:0": 5, "r:1": 0, "t:0": 0}


def test_lag_is_empty_before_the_first_progress_and_counts_a_partition_not_read_yet_from_its_latest():
    assert partition_lag(None) == {}
    assert partition_lag({"sources": [{"endOffset": None, "latestOffset": {"r": {"0": 3}}}]}) == {"r:0": 0}
    assert partition_lag({"sources": [{"endOffset": {"r": {"0": 1}}, "latestOffset": "not json"}]}) == {}


def test_verdicts():
    def judge(doc, alive=True):
        return verdict(doc, NOW, alive, max_silence_s=60, max_lag=100).status

    assert judge(None) == "never"
    assert judge(document()) == "running"
    assert judge(document(state="stopped")) == "stopped"
    assert judge(document(state="stopped"), alive=False) == "stopped"
    assert judge(document(), alive=False) == "down"
    assert judge(document(state="failed", error="boom")) == "down"
    assert judge(document(heartbeat_at=(NOW - timedelta(seconds=61)).isoformat())) == "down"
    assert judge(document(lag={"r:0": 60, "r:1": 41})) == "behind"
    assert judge(document(lag={"r:0": 60, "r:1": 40})) == "running"


def test_a_down_verdict_says_why():
    judged = verdict(document(), NOW, False, 60, 100)
    assert judged.alarming and "process 4242 is not running" in judged.reason and "4 s ago" in judged.reason
    assert "failed: boom" in verdict(document(state="failed", error="boom"), NOW, True, 60, 100).reason
    assert not verdict(None, NOW, False, 60, 100).alarming


def test_the_watchdog_alerts_only_when_down_or_behind(tmp_path, monkeypatch):
    settings = load_settings(env="ci", var_dir=tmp_path, stream_max_silence_s=60, stream_max_lag=100)
    sent = []
    monkeypatch.setattr("readiness.orchestration.alerts.post_alert", lambda payload, settings=None: sent.append(payload))
    assert stream_health.check_stream(settings, NOW).status == "never" and sent == []
    path = stream_health.health_path(settings)
    write_health(path, document(pid=os.getpid()))  # this process runs pytest, not the service: down
    assert stream_health.check_stream(settings, NOW).status == "down"
    write_health(path, document(state="stopped"))
    assert stream_health.check_stream(settings, NOW).status == "stopped"
    assert [(a["kind"], a["pid"]) for a in sent] == [("stream_down", os.getpid())]


def test_the_health_file_is_replaced_whole(tmp_path):
    path = tmp_path / "stream" / "health.json"
    assert read_health(path) is None
    write_health(path, document(pid=1))
    write_health(path, document(pid=2))
    assert read_health(path)["pid"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["health.json"]
    path.write_text("{half", encoding="utf-8")
    assert read_health(path) is None


def test_process_alive_wants_a_live_stream_process():
    assert not process_alive(None)
    assert not process_alive(os.getpid())  # alive, but pytest is not `readiness stream`
    assert not process_alive(2 ** 22 + 1)  # above the kernel's pid limit: no such process


def test_status_lines_name_the_last_batch_the_gold_commit_and_the_lag():
    doc = document(last_batch={"batch_id": 7, "ended_at": "2026-12-14T02:59:50+00:00", "events_in": 12,
                               "bronze_rows": 10, "target_plans": 0, "dead_letters": 1, "already_in_bronze": 1,
                               "periods": ["2026Q3"], "failed_periods": {"2026Q2": "gate"}},
                   last_gold_commit={"period_id": "2026Q3", "at": "2026-12-14T02:59:49+00:00",
                                     "versions": {"gold_readiness_index": 4, "gold_indicator_values": 5}},
                   lag={"r:0": 3})
    lines = status_lines(doc, verdict(doc, NOW, True, 60, 100))
    assert lines == [
        "Streaming service: running, pid 4242 (heartbeat 4 s ago, 3 offsets not yet read); "
        "started 2026-12-14T02:00:00+00:00, trigger every 3.0 s",
        "  last batch 7 ended 2026-12-14T02:59:50+00:00: 12 events in = 10 bronze + 0 target plans + "
        "1 dead letters + 1 already in bronze; periods 2026Q3; gate failed for 2026Q2",
        "  last gold commit 2026-12-14T02:59:49+00:00 for 2026Q3: gold_indicator_values@5 gold_readiness_index@4",
        "  lag per partition: r:0=3",
    ]
    assert status_lines(None, verdict(None, NOW, False, 60, 100)) == [
        "Streaming service: never (the streaming service has not run here)"]


def test_a_service_on_another_host_is_judged_by_its_heartbeat():
    elsewhere = document(host="stream-node-that-is-not-this-one")
    assert stream_health.document_alive(elsewhere) is None
    assert stream_health.is_live(elsewhere, NOW, max_silence_s=60)
    assert not stream_health.is_live(elsewhere, NOW + timedelta(seconds=61), max_silence_s=60)
    assert verdict(elsewhere, NOW, None, 60, 100).status == "running"
    assert verdict(elsewhere, NOW + timedelta(seconds=61), None, 60, 100).status == "down"


def test_is_live_wants_a_live_state_and_a_live_process():
    here = document(pid=os.getpid())  # this process is pytest, not the service
    assert not stream_health.is_live(here, NOW, 60)
    assert not stream_health.is_live(document(state="stopped", host="elsewhere"), NOW, 60)
    assert not stream_health.is_live(None, NOW, 60)
