"""Validate and publish killed mid-write: the rerun leaves exactly the tables of an undisturbed run,
and a second rerun leaves every table at its Delta version.

The same ingested lake is copied: one copy is refreshed without faults (the reference), the other
is killed (SIGKILL at named points between the commits of validate and publish), then refreshed.
"""
from __future__ import annotations

import dataclasses
import shutil
import time
from datetime import datetime, timezone

import pytest

from readiness.contracts.encoding import TARGET_PLAN
from readiness.contracts.producer import ReportProducer
from readiness.dev.simulate import SimulationProfile, simulate
from readiness.lake.tables import (
    GOLD_PUBLICATIONS,
    GOLD_TABLES,
    QUARANTINE,
    SILVER_VALUES,
    VALIDATION_RUNS,
    WARNINGS,
)
from support.faults import INGEST, record_fault, refresh_command, run_job, snapshot, table_rows, table_version

pytestmark = pytest.mark.slow

PROVINCES = {"08", "37", "56"}  # three small provinces keep each run short
# One point in each job, each between two of its commits: silver written but not its quarantine, one
# gold table written but not the others (each run costs a Spark session and the gate's fixed cost).
KILL_POINTS = (f"validate:written:{SILVER_VALUES}", f"aggregate:written:{GOLD_TABLES[0]}")
COMPARED = (SILVER_VALUES, QUARANTINE, WARNINGS, VALIDATION_RUNS, *GOLD_TABLES)


def lake_versions(settings) -> dict[str, int | None]:
    return {p.name: table_version(settings, p.name) for p in sorted(settings.lake_dir.iterdir())}


@pytest.fixture(scope="module")
def ingested(isolated):
    settings = isolated("period_faults")
    batch = simulate(5, datetime(2026, 11, 20, tzinfo=timezone.utc),
                     SimulationProfile(quarters=1, half_years=0, years=0, corrupt_messages=0))
    reports = [r for r in batch.reports if r["province_code"] in PROVINCES]
    targets = [t for t in batch.targets if t["province_code"] in PROVINCES]
    with ReportProducer(settings) as producer:
        assert producer.publish_reports(reports).not_acknowledged == 0
        assert producer.publish_reports(targets, TARGET_PLAN, settings.topic_targets).not_acknowledged == 0
    run_job(settings, INGEST).result()
    return settings, batch.periods[0].id, len(reports)


def test_killed_validate_and_publish_rerun_equals_an_undisturbed_run(ingested, tmp_path):
    settings, period_id, reports = ingested
    reference = dataclasses.replace(settings, var_dir=tmp_path / "reference")
    shutil.copytree(settings.lake_dir, reference.lake_dir)
    undisturbed = run_job(reference, refresh_command(period_id)).result()
    assert undisturbed["validate"]["events_in"] == reports

    for point in KILL_POINTS:
        run = run_job(settings, refresh_command(period_id), fault_point=point)
        assert run.killed, f"{point}: exit {run.returncode}\n{run.stderr[-2000:]}"
    start = time.monotonic()
    rerun = run_job(settings, refresh_command(period_id)).result()
    recovered = time.monotonic() - start
    assert rerun["validate"]["events_in"] == reports
    for name in COMPARED:
        assert snapshot(settings, name) == snapshot(reference, name), name
    # The publication register names the versions that hold the period, in both lakes alike.
    published = table_rows(settings, GOLD_PUBLICATIONS)
    assert [r["period_id"] for r in published] == [period_id]
    assert {t for t, _ in published[0]["gold_versions"]} == set(GOLD_TABLES)
    record_fault(fault="validate and publish SIGKILL between commits",
                 injected=f"Settings.fault_point at {len(KILL_POINTS)} points, one per run", runs=len(KILL_POINTS) + 1,
                 events_in=reports, lost=0, doubled=0, recover_seconds=round(recovered, 1))

    before = lake_versions(settings)
    again = run_job(settings, refresh_command(period_id)).result()
    assert again["delta_versions"] == {}
    assert lake_versions(settings) == before
