"""The ingest under faults: SIGKILL at each commit point and at random times, a checkpoint deleted,
corrupted or rolled back between runs. After every fault, one clean run leaves each offset of the
topics in bronze (reports, target plans or dead letters) exactly once.

Each test publishes to its own topics on the session broker and runs the ingest as a real process
(``jobs/ingest_reports.py``) that it kills by its pid.
"""
from __future__ import annotations

import random
import shutil
import time
from datetime import datetime, timezone
from itertools import count

import pytest

from readiness.contracts.encoding import TARGET_PLAN
from readiness.contracts.producer import ReportProducer
from readiness.lake.tables import INGEST_POSITIONS
from readiness.settings import Settings
from support.faults import (
    BRONZE,
    INGEST,
    assert_exactly_once,
    assert_nothing_doubled,
    checkpoint_path,
    record_fault,
    run_job,
    topic_offsets,
)
from support.reports import report_event

pytestmark = pytest.mark.slow

T0 = datetime(2026, 10, 5, 8, 0, tzinfo=timezone.utc)
COMMIT_POINTS = ("ingest:batch_decoded", *(f"ingest:committed:{t}" for t in BRONZE), "ingest:positions_recorded")
_ids = count(1)


def publish_round(settings: Settings, reports: int) -> int:
    """``reports`` signed reports of province 38, one target plan and one undecodable message;
    returns how many events were acknowledged."""
    values = [{"indicator_code": "computers_per_100_staff", "numerator": 90.0, "denominator": 100.0}]
    batch = [report_event(next(_ids), "38", "38", "PROVINCE", values, "2026Q3", T0) for _ in range(reports)]
    plan = {"event_id": f"00000000-0000-4000-9000-{next(_ids):012d}", "province_code": "38", "plan_year": 2026,
            "plan_reference": "KH-1", "targets": [], "revision": 0, "submitted_at": T0, "source_system": "test"}
    with ReportProducer(settings) as producer:
        result = producer.publish_reports(batch)
        result = result.merge(producer.publish_reports([plan], TARGET_PLAN, settings.topic_targets))
        result = result.merge(producer.send_raw(settings.topic_reports, [("38", b"\x00not avro")]))
    assert result.not_acknowledged == 0, result.failures
    return result.acknowledged


def test_killed_at_every_commit_point(isolated):
    settings = isolated("fault_commit_points")
    published = 0
    for point in COMMIT_POINTS:
        published += publish_round(settings, 30)
        run = run_job(settings, INGEST, fault_point=point)
        assert run.killed, f"{point}: exit {run.returncode}\n{run.stderr[-2000:]}"
        assert_nothing_doubled(settings)
    start = time.monotonic()
    result = run_job(settings, INGEST).result()
    lost, doubled = assert_exactly_once(settings)
    assert published == len(topic_offsets(settings))
    # The killed runs committed some batches before dying: the clean run read them again, inserted nothing twice.
    assert result["events_in"] == (result["bronze_rows"] + result["target_plans"] + result["dead_letters"]
                                   + result["already_in_bronze"])
    record_fault(fault="ingest SIGKILL at each commit point", injected="Settings.fault_point, one per run",
                 runs=len(COMMIT_POINTS) + 1, events_in=published, lost=lost, doubled=doubled,
                 recover_seconds=round(time.monotonic() - start, 1))


def test_lost_corrupted_and_rolled_back_checkpoints(isolated):
    settings = isolated("fault_checkpoints")
    checkpoint = checkpoint_path(settings)
    published = publish_round(settings, 20)
    first = run_job(settings, INGEST).result()
    assert (first["checkpoint"], first["bronze_rows"], first["already_in_bronze"]) == ("fresh", 20, 0)
    backup = checkpoint.with_name("backup")
    shutil.copytree(checkpoint, backup)

    # Deleted: the new checkpoint starts at the positions bronze recorded, so nothing is read twice.
    shutil.rmtree(checkpoint)
    published += publish_round(settings, 20)
    deleted = run_job(settings, INGEST).result()
    assert (deleted["checkpoint"], deleted["bronze_rows"], deleted["already_in_bronze"]) == ("fresh", 20, 0)
    assert_exactly_once(settings)

    # Corrupted: set aside (kept for the engineer), then the same as deleted.
    newest = max((checkpoint / "offsets").iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1)
    newest.write_bytes(b"\x00garbage")
    published += publish_round(settings, 20)
    corrupted = run_job(settings, INGEST).result()
    assert (corrupted["checkpoint"], corrupted["bronze_rows"], corrupted["already_in_bronze"]) == ("set_aside", 20, 0)
    assert list(checkpoint.parent.glob("ingest_reports.unreadable-*"))
    assert_exactly_once(settings)

    # Rolled back to an older copy: Spark replays what came after it; bronze already holds it all.
    shutil.rmtree(checkpoint)
    shutil.copytree(backup, checkpoint)
    published += publish_round(settings, 20)
    rolled = run_job(settings, INGEST).result()
    assert (rolled["checkpoint"], rolled["bronze_rows"], rolled["already_in_bronze"]) == ("kept", 20, 44)
    assert_exactly_once(settings)

    # Checkpoint and recorded positions both gone: everything from the earliest offset, nothing doubled.
    shutil.rmtree(checkpoint)
    shutil.rmtree(settings.table_path(INGEST_POSITIONS))
    published += publish_round(settings, 20)
    start = time.monotonic()
    bare = run_job(settings, INGEST).result()
    assert (bare["bronze_rows"], bare["already_in_bronze"]) == (20, published - 22)
    lost, doubled = assert_exactly_once(settings)
    record_fault(fault="checkpoint deleted, corrupted, rolled back; positions table deleted",
                 injected="files removed or overwritten between runs", runs=5, events_in=published, lost=lost,
                 doubled=doubled, recover_seconds=round(time.monotonic() - start, 1))


def test_killed_at_random_times(isolated):
    settings = isolated("fault_random_kills")
    rng = random.Random(12)
    published, kills = 0, 0
    for _ in range(3):  # bounded: three kills, each within the first 25 s of a run
        published += publish_round(settings, 200)
        run = run_job(settings, INGEST, kill_after=rng.uniform(4.0, 25.0))
        kills += run.killed
        assert run.killed or run.returncode == 0, run.stderr[-2000:]
        assert_nothing_doubled(settings)
    start = time.monotonic()
    run_job(settings, INGEST).result()
    lost, doubled = assert_exactly_once(settings)
    record_fault(fault="ingest SIGKILL at random times", injected="SIGKILL by pid after 4-25 s (seed 12)",
                 runs=4, kills=kills, events_in=published, lost=lost, doubled=doubled,
                 recover_seconds=round(time.monotonic() - start, 1))
