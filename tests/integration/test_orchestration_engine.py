"""The DAGs through the real Airflow scheduler and LocalExecutor, on the real broker, Spark and Delta.

One module-scoped Airflow (api-server + scheduler + dag-processor in a temporary AIRFLOW_HOME)
serves every test here:

1. reports are published to the test broker; the scheduler starts ``readiness_ingest`` on its
   schedule (as soon as the DAG is loaded); its asset event schedules ``readiness_refresh_changed``, which publishes
   gold for each period that received events;
2. ``readiness_reprocess`` (triggered through the REST API) reruns a period: the gold tables keep
   their content and Delta versions;
3. ``readiness_period_close`` (REST API, ``period_id`` param) closes the period at the same time:
   the gold versions are recorded in ``gold_period_freezes`` and the units still missing are
   posted to the webhook;
4. ``readiness_reprocess`` with an unknown methodology fails: the failure callback posts the DAG,
   task, run, period and error to the webhook (a local HTTP server);
5. every run left one row in ``ops_pipeline_runs``, which ``readiness status`` prints;
6. then, in this process: the consumer lag from the real checkpoint, and a later publish after the
   close: gold differs, readers of the frozen versions still see what was published at the close.
"""
from __future__ import annotations

import dataclasses
import os
import re
import time
from datetime import datetime, timezone

import pytest

from readiness.contracts.producer import ReportProducer
from readiness.dev.airflow import AirflowServices
from readiness.domain.periods import REPORTING_TIMEZONE
from readiness.lake import store as lake
from readiness.lake.log import lake_versions
from readiness.lake.tables import FREEZES, GOLD_COMPLETENESS, GOLD_INDEX, GOLD_VALUES
from readiness.orchestration import freezes
from readiness.orchestration.freezes import freeze_period, read_frozen
from support.ports import free_port
from support.webhook import RecordingWebhook

pytestmark = pytest.mark.slow

Q3, Q2 = "2026Q3", "2026Q2"
DAG_IDS = ["readiness_ingest", "readiness_refresh_changed", "readiness_reprocess", "readiness_period_close",
           "readiness_period_pipeline"]
GOLD = (GOLD_VALUES, GOLD_INDEX, GOLD_COMPLETENESS)


def ratio(code: str, numerator: float, denominator: float) -> dict:
    return {"indicator_code": code, "numerator": numerator, "denominator": denominator, "value": None, "unit": None}


def report(event: int, province: str, unit: str, period: str, values: list[dict], submitted_at: datetime) -> dict:
    return {
        "event_id": f"00000000-0000-4000-8000-{event:012d}",
        "province_code": province,
        "reporting_unit": {"code": unit, "kind": "AGENCY", "name": None},
        "report_type": "QUARTERLY",
        "period": period,
        "values": values,
        "revision": 0,
        "submitted_at": submitted_at,
        "source_system": "orchestration-test",
    }


ON_TIME_Q3 = datetime(2026, 9, 18, 3, 0, tzinfo=timezone.utc)
ON_TIME_Q2 = datetime(2026, 6, 18, 3, 0, tzinfo=timezone.utc)
REPORTS = [
    report(1, "38", "38.S01", Q3, [ratio("computers_per_100_staff", 90, 100), ratio("agencies_with_it_staff", 1, 1)], ON_TIME_Q3),
    report(2, "38", "38.S02", Q3, [ratio("computers_per_100_staff", 30, 50)], ON_TIME_Q3),
    report(3, "25", "25.S01", Q3, [ratio("computers_per_100_staff", 120, 100)], ON_TIME_Q3),
    # More email users than civil servants: quarantined.
    report(4, "25", "25.S02", Q3, [ratio("staff_using_official_email", 60, 50)], ON_TIME_Q3),
    report(5, "38", "38.S01", Q2, [ratio("computers_per_100_staff", 80, 100)], ON_TIME_Q2),
]


def gold_snapshot(spark, settings, period: str) -> dict[str, list[tuple]]:
    return {t: sorted(tuple(str(v) for v in r) for r in lake.read(spark, settings, t).where(f"period_id = '{period}'").collect())
            for t in GOLD}


@pytest.fixture(scope="module")
def webhook():
    with RecordingWebhook() as hook:
        yield hook


@pytest.fixture(scope="module")
def airflow(isolated, webhook, tmp_path_factory):
    """The test's settings and running Airflow services, with the reports already on Kafka."""
    settings = dataclasses.replace(isolated("orchestration"), webhook_url=webhook.url)
    with ReportProducer(settings) as producer:
        sent = producer.publish_reports(REPORTS)
        sent = sent.merge(producer.send_raw(settings.topic_reports, [("25", b"\xc3\x01garbage")]))
    assert sent.not_acknowledged == 0 and sent.sent == len(REPORTS) + 1
    with pytest.MonkeyPatch.context() as mp:  # the project's SQLite under the temporary AIRFLOW_HOME
        mp.delenv("READINESS_AIRFLOW_DB_URL", raising=False)
        mp.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", raising=False)
        # Yearly instead of every 5 minutes: the schedule starts exactly one run (run_immediately),
        # and no tick adds runs while the other DAGs are tested.
        services = AirflowServices(settings, port=free_port(), log_server_port=free_port(),
                                   extra_env={"READINESS_INGEST_CRON": "0 0 1 1 *"})
    started = time.monotonic()
    with services:
        services.wait_for_dags(DAG_IDS)
        print(f"\nAirflow services up and DAGs loaded in {time.monotonic() - started:.0f}s")
        yield settings, services
    print(f"Airflow services stopped after {time.monotonic() - started:.0f}s")


def wait_for_dag_run(services: AirflowServices, dag_id: str, timeout: float = 600, after: int = 0):
    """The first finished run of ``dag_id`` (runs are listed newest first), waiting for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in services.runs(dag_id) if r["state"] in ("success", "failed")]
        if len(runs) > after:
            run = sorted(runs, key=lambda r: r["run_after"])[after]
            return services.wait_for_run(dag_id, run["dag_run_id"], timeout=60)
        time.sleep(3)
    raise AssertionError(f"no finished run of {dag_id} after {timeout}s: {services.runs(dag_id)}\n{services.log_tail()}")


@pytest.fixture(scope="module")
def published(airflow):
    """The schedule starts ``readiness_ingest`` as soon as the DAG is loaded (``run_immediately``:
    the latest tick); its bronze asset event triggers the refresh of both periods."""
    settings, services = airflow
    start = time.monotonic()
    first = wait_for_dag_run(services, "readiness_ingest", timeout=900)
    refresh = wait_for_dag_run(services, "readiness_refresh_changed", timeout=900)
    print(f"scheduled ingest + asset-triggered refresh: {time.monotonic() - start:.0f}s")
    ingests = [services.wait_for_run("readiness_ingest", r["dag_run_id"], timeout=60)
               for r in services.runs("readiness_ingest") if r["state"] in ("success", "failed")]
    return first, ingests, refresh


def test_ingest_then_asset_triggered_refresh_publishes_gold(airflow, published, spark):
    settings, _ = airflow
    first, ingests, refresh = published
    assert [r.run_id for r in ingests] == [first.run_id]  # one run: the schedule's
    assert first.run_id.startswith("scheduled__")
    assert first.state == "success", first
    counts = first.xcom["ingest_reports"]
    assert (counts["events_in"], counts["bronze_rows"], counts["target_plans"], counts["dead_letters"],
            counts["already_in_bronze"], counts["checkpoint"]) == (len(REPORTS) + 1, len(REPORTS), 0, 1, 0, "fresh")
    assert counts["periods"] == [Q2, Q3]
    # New report rows arrived: announce_bronze emitted the asset event with the periods.
    assert first.task_states == {"ingest_reports": "success", "announce_bronze": "success",
                                 "check_silence": "success", "record_run": "success"}
    assert first.xcom["announce_bronze"] == [Q2, Q3]
    assert first.xcom["check_silence"]["silent"] is False

    assert refresh.state == "success", refresh
    assert refresh.xcom["find_changed_periods"] == [Q2, Q3]
    assert {k: v for k, v in refresh.task_states.items()} == {
        "find_changed_periods": "success", "refresh_period[0]": "success", "refresh_period[1]": "success",
        "record_run": "success"}
    by_period = {refresh.xcom[f"refresh_period[{i}]"]["period_id"]: refresh.xcom[f"refresh_period[{i}]"] for i in (0, 1)}
    q3 = by_period[Q3]["validate"]
    # No re-delivery, and no province has enough reports for its quarantine share to hold it back.
    assert (q3["events_in"], q3["events_accepted"], q3["events_quarantined"], q3["events_held_back"],
            q3["events_duplicate"], q3["held_back_provinces"]) == (4, 3, 1, 0, 0, [])
    assert by_period[Q2]["validate"]["events_accepted"] == 1
    for period in (Q2, Q3):
        snapshot = gold_snapshot(spark, settings, period)
        assert all(snapshot[t] for t in GOLD), f"gold tables without rows for {period}"


@pytest.fixture(scope="module")
def reruns(airflow, published, spark):
    """Rerun Q3 (reprocess, with a methodology check) and close it, both at once; then a bad reprocess."""
    settings, services = airflow
    before = (gold_snapshot(spark, settings, Q3), {t: v for t, v in lake_versions(settings).items() if t in GOLD})
    start = time.monotonic()
    reprocess_id = services.trigger("readiness_reprocess", {"period_id": Q3, "methodology_version": "ict-index.v1"})
    close_id = services.trigger("readiness_period_close", {"period_id": Q3})
    failing_id = services.trigger("readiness_reprocess", {"period_id": Q3, "methodology_version": "ict-index.v9"})
    reprocess = services.wait_for_run("readiness_reprocess", reprocess_id, timeout=900)
    close = services.wait_for_run("readiness_period_close", close_id, timeout=900)
    failing = services.wait_for_run("readiness_reprocess", failing_id, timeout=600)
    print(f"reprocess + close + failing reprocess: {time.monotonic() - start:.0f}s")
    return before, reprocess, close, failing


def test_rerun_of_a_period_leaves_gold_content_and_versions_unchanged(airflow, reruns, spark):
    settings, _ = airflow
    (content_before, versions_before), reprocess, close, _ = reruns
    assert reprocess.state == "success", reprocess
    assert close.state == "success", close
    assert gold_snapshot(spark, settings, Q3) == content_before
    assert {t: v for t, v in lake_versions(settings).items() if t in GOLD} == versions_before
    rebuilt = reprocess.xcom["rebuild_period"]
    assert not any(t.startswith(("gold_", "silver_")) for t in rebuilt["delta_versions"]), rebuilt["delta_versions"]
    assert rebuilt["methodology"] == {"id": "ict-index", "version": "1", "index_rows": 4}  # 2 provinces x 2 bases


def test_period_close_freezes_gold_versions_and_alerts_missing_units(airflow, reruns, webhook, spark):
    settings, _ = airflow
    (_, versions_before), _, close, _ = reruns
    assert close.task_states == {"periods_due": "success", "ingest_reports": "success", "close_period[0]": "success",
                                 "alert_missing_units": "success", "record_run": "success"}
    result = close.xcom["close_period[0]"]
    gold_now = {t: v for t, v in lake_versions(settings).items() if t.startswith("gold_") and t != FREEZES}
    assert result["freeze"]["frozen"] is True
    assert result["freeze"]["versions"] == gold_now
    assert set(versions_before) <= set(gold_now)
    frozen = {r["table_name"]: r["version"] for r in
              lake.read(spark, settings, FREEZES).where(f"period_id = '{Q3}'").collect()}
    assert frozen == gold_now
    # 38 and 25 reported some of their units; every other unit of every province is missing.
    missing = result["missing_units"]
    assert "38.S01" not in missing["38"] and "38.S02" not in missing["38"] and "38.S03" in missing["38"]
    alert = webhook.wait_for(lambda b: b.get("kind") == "late_data" and b.get("period") == Q3)
    assert alert["missing_units"] == missing
    assert alert["units_missing"] == result["units_missing"] > 0
    assert alert["due_date"] == "2026-09-20"
    assert (alert["dag_id"], alert["run_id"]) == ("readiness_period_close", close.run_id)


def test_failing_task_posts_to_the_webhook(airflow, reruns, webhook):
    *_, failing = reruns
    assert failing.state == "failed"
    assert failing.task_states == {"rebuild_period": "failed", "record_run": "success"}
    alert = webhook.wait_for(lambda b: b.get("kind") == "task_failed" and b.get("run_id") == failing.run_id)
    assert (alert["dag_id"], alert["task_id"], alert["period"]) == ("readiness_reprocess", "rebuild_period", Q3)
    assert alert["error"].startswith("AirflowFailException: methodology ict-index version 9 is not the shipped version 1")
    assert alert["try_number"] == 1  # a bad parameter fails at once, no retries


def test_every_run_has_one_row_in_ops_pipeline_runs(airflow, published, reruns, spark, capsys):
    from readiness.orchestration.run_health import format_freshness, format_runs, freshness, recent_runs

    settings, services = airflow
    rows = recent_runs(settings, limit=50)
    by_run = {(r["dag_id"], r["run_id"]): r for r in rows}
    _, ingests, refresh = published
    _, reprocess, close, failing = reruns
    for run in [*ingests, refresh, reprocess, close, failing]:
        assert (run.dag_id, run.run_id) in by_run, f"no ops row for {run.dag_id} {run.run_id}"
    assert len(by_run) == len(rows)  # one row per run

    ingest_rows = [by_run[(r.dag_id, r.run_id)] for r in ingests]
    assert [(r["events_in"], r["bronze_rows"], r["target_plans"], r["dead_letters"], r["already_in_bronze"],
             r["periods"]) for r in ingest_rows] == [(len(REPORTS) + 1, len(REPORTS), 0, 1, 0, [Q2, Q3])]
    assert all(sum(r["consumer_lag"].values()) == 0 for r in ingest_rows)
    assert any(k.startswith(f"{settings.topic_reports}:") for k in ingest_rows[0]["consumer_lag"])
    refreshed = by_run[(refresh.dag_id, refresh.run_id)]
    assert (refreshed["state"], refreshed["periods"]) == ("success", [Q2, Q3])
    assert (refreshed["events_validated"], refreshed["events_accepted"], refreshed["events_quarantined"],
            refreshed["events_held_back"], refreshed["events_duplicate"]) == (5, 4, 1, 0, 0)
    assert {"silver_indicator_values", "gold_indicator_values"} <= set(refreshed["delta_versions"])
    assert (by_run[(failing.dag_id, failing.run_id)]["state"], by_run[(failing.dag_id, failing.run_id)]["periods"]) == (
        "failed", [Q3])
    assert by_run[(close.dag_id, close.run_id)]["delta_versions"].get(FREEZES) is not None

    now = datetime.now(timezone.utc)
    fresh = {r["province_code"]: r for r in freshness(settings)}
    assert fresh["38"]["last_accepted_period"] == Q3 and fresh["38"]["events"] == 3
    assert fresh["01"]["last_event_at"] is None  # Hà Nội sent nothing
    with capsys.disabled():
        print("\n" + format_runs(rows[:6], REPORTING_TIMEZONE))
        print(format_freshness([r for r in fresh.values() if r["events"]], now, REPORTING_TIMEZONE))


# --------------------------------------------------------------------------------------------
# After the Airflow runs, in this process: lag, freeze semantics, the run register's MERGE


CORRECTION = {**REPORTS[1], "event_id": "00000000-0000-4000-8000-000000000099", "revision": 1,
              "values": [ratio("computers_per_100_staff", 45, 50)]}
Q3_38_COMPUTERS = ("basis = 'as_reported' AND province_code = '38' AND indicator_code = 'computers_per_100_staff'")


@pytest.fixture(scope="module")
def lag(airflow, reruns):
    """The committed offsets, then the lag once a correction is on Kafka but not yet ingested."""
    from readiness.orchestration.run_health import committed_offsets, ingest_lag

    settings, _ = airflow
    committed = committed_offsets(settings.checkpoint_dir / "ingest_reports")
    with ReportProducer(settings) as producer:
        assert producer.publish_reports([CORRECTION]).not_acknowledged == 0
    return committed, ingest_lag(settings)


def test_consumer_lag_from_the_real_checkpoint(airflow, lag):
    settings, _ = airflow
    committed, pending = lag
    assert sum(committed[settings.topic_reports].values()) == len(REPORTS) + 1
    assert {f"{settings.topic_reports}:{p}" for p in range(settings.topic_partitions)} <= set(pending)
    assert sum(pending.values()) == 1  # the correction, on Kafka, not yet ingested


def test_freezing_again_keeps_the_first_freeze(airflow, reruns):
    settings, _ = airflow
    _, _, close, _ = reruns
    again = freeze_period(settings, Q3, "test-freeze-again")
    first = close.xcom["close_period[0]"]["freeze"]
    assert again["frozen"] is False
    assert (again["versions"], again["frozen_at"]) == (first["versions"], first["frozen_at"])


def test_later_publishes_leave_the_frozen_version_readable(airflow, reruns, spark):
    """After the close, a later publish of the period changes gold; readers of the closed period
    still get what was published at the close, through the recorded versions."""
    from pyspark.sql import functions as F

    settings, _ = airflow
    _, _, close, _ = reruns
    frozen_versions = close.xcom["close_period[0]"]["freeze"]["versions"]
    current = lake.read(spark, settings, GOLD_VALUES).where(f"period_id = '{Q3}'")
    published = current.where(Q3_38_COMPUTERS).collect()[0]["value"]
    assert published == pytest.approx((90 + 30) / 150 * 100)
    # A later publish of Q3 (what a rebuild after the correction writes): 38's value changes.
    later = current.withColumn("value", F.when(F.expr(Q3_38_COMPUTERS), F.lit(90.0)).otherwise(F.col("value")))
    assert lake.replace_partition(later, settings, GOLD_VALUES, "period_id", Q3)
    assert lake.read(spark, settings, GOLD_VALUES).where(f"period_id = '{Q3}' AND {Q3_38_COMPUTERS}").collect()[0][
        "value"] == 90.0
    assert freezes.frozen_versions(settings, Q3) == frozen_versions
    [row] = read_frozen(settings, GOLD_VALUES, Q3).where(Q3_38_COMPUTERS).collect()
    assert row["value"] == pytest.approx(published)
    # A deliberate refreeze (readiness_reprocess with refreeze=true) records the current versions.
    refrozen = freeze_period(settings, Q3, "test-refreeze", refreeze=True)
    assert refrozen["frozen"] is True and refrozen["versions"][GOLD_VALUES] == frozen_versions[GOLD_VALUES] + 1
    [row] = read_frozen(settings, GOLD_VALUES, Q3).where(Q3_38_COMPUTERS).collect()
    assert row["value"] == 90.0


def test_recording_a_run_again_keeps_one_row(airflow, reruns):
    from readiness.orchestration.run_health import OPS_RUNS, recent_runs, record_run

    settings, _ = airflow
    _, reprocess, _, _ = reruns
    [row] = [r for r in recent_runs(settings, 50) if r["run_id"] == reprocess.run_id]
    version = lake_versions(settings)[OPS_RUNS]
    record_run(settings, {**row, "state": "failed", "task_states": {"rebuild_period": "failed"}})
    rows = [r for r in recent_runs(settings, 50) if r["run_id"] == reprocess.run_id]
    assert [(r["state"], r["task_states"]) for r in rows] == [("failed", {"rebuild_period": "failed"})]
    assert lake_versions(settings)[OPS_RUNS] == version + 1  # one MERGE commit


def test_readiness_status_prints_runs_lag_and_freshness(airflow, published, reruns):
    """``readiness status`` (the subcommand ``run_health.register`` adds), run as a user would."""
    import subprocess
    import sys

    from readiness.dev.airflow import readiness_env

    settings, _ = airflow
    _, _, refresh = published
    env = {**os.environ, **readiness_env(settings)}
    out = subprocess.run([sys.executable, "-m", "readiness.orchestration.run_health", "status", "--runs", "6"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    # The ingest schedule may have ticked again meanwhile: the header counts the rows it shows.
    from readiness.orchestration.run_health import recent_runs

    header = re.match(r"Pipeline runs \(ops_pipeline_runs, latest (\d+); times Asia/Ho_Chi_Minh\)\n", text)
    assert header, text[:200]
    assert int(header.group(1)) == min(6, len(recent_runs(settings, 50))) >= 5
    assert refresh.run_id in text and "readiness_period_close" in text
    assert "Consumer lag now (topic end offsets - ingest checkpoint):" in text
    assert "Freshness per province (times Asia/Ho_Chi_Minh" in text
    assert "Thanh Hóa" in text
    print("\n$ readiness status --runs 6\n" + text)
