"""The DAGs through the real Airflow scheduler and LocalExecutor, on the real broker, Spark and Delta.

One module-scoped Airflow (api-server + scheduler + dag-processor in a temporary AIRFLOW_HOME)
serves every test here:

1. reports are published to the test broker, then ``readiness_ingest`` is triggered through the
   REST API; its asset event schedules ``readiness_refresh_changed``, which publishes gold for
   each period that received events;
2. ``readiness_reprocess`` reruns a period: the gold tables keep their content and Delta versions;
3. ``readiness_period_close`` closes the period: the gold versions are recorded in
   ``gold_period_freezes`` and the units still missing are posted to the webhook;
4. ``readiness_reprocess`` with an unknown methodology fails: the failure callback posts the DAG,
   task, run, period and error to the webhook (a local HTTP server);
5. every run left one row in ``ops_pipeline_runs``, which ``readiness status`` prints.
"""
from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone

import pytest

from readiness import lake
from readiness.airflow_local import AirflowServices
from readiness.orchestration import FREEZES, lake_versions
from readiness.producer import ReportProducer
from readiness.tables import GOLD_COMPLETENESS, GOLD_INDEX, GOLD_VALUES

from conftest import free_port
from test_alerts import RecordingWebhook

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
        services = AirflowServices(settings, port=free_port(), log_server_port=free_port())
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
    """Ingest through the scheduler; the bronze asset event triggers the refresh of both periods."""
    settings, services = airflow
    start = time.monotonic()
    run_id = services.trigger("readiness_ingest")
    ingest = services.wait_for_run("readiness_ingest", run_id, timeout=600)
    refresh = wait_for_dag_run(services, "readiness_refresh_changed", timeout=600)
    print(f"ingest + asset-triggered refresh: {time.monotonic() - start:.0f}s")
    # The schedule may also have started an ingest run as the DAG was unpaused: the checkpoint
    # makes whichever runs second find nothing new.
    ingests = [services.wait_for_run("readiness_ingest", r["dag_run_id"], timeout=600)
               for r in services.runs("readiness_ingest")]
    return ingest, ingests, refresh


def test_ingest_then_asset_triggered_refresh_publishes_gold(airflow, published, spark):
    settings, _ = airflow
    ingest, ingests, refresh = published
    assert ingest.state == "success", ingest
    assert all(r.state == "success" for r in ingests)
    counts = [r.xcom["ingest_reports"] for r in ingests]
    assert sum(c["events_in"] for c in counts) == len(REPORTS) + 1
    assert sum(c["bronze_rows"] for c in counts) == len(REPORTS)
    assert sum(c["dead_letters"] for c in counts) == 1
    # Exactly one ingest run saw new rows and emitted the bronze asset event; the others skipped it.
    announcing = [r for r in ingests if r.task_states["announce_bronze"] == "success"]
    assert len(announcing) == 1
    assert announcing[0].xcom["announce_bronze"] == [Q2, Q3]
    assert all(r.task_states["announce_bronze"] == "skipped" for r in ingests if r not in announcing)

    assert refresh.state == "success", refresh
    assert refresh.xcom["find_changed_periods"] == [Q2, Q3]
    assert {k: v for k, v in refresh.task_states.items()} == {
        "find_changed_periods": "success", "refresh_period[0]": "success", "refresh_period[1]": "success",
        "record_run": "success"}
    by_period = {refresh.xcom[f"refresh_period[{i}]"]["period_id"]: refresh.xcom[f"refresh_period[{i}]"] for i in (0, 1)}
    q3 = by_period[Q3]["validate"]
    assert (q3["events_in"], q3["events_accepted"], q3["events_quarantined"]) == (4, 3, 1)
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
    from readiness.run_health import format_freshness, format_runs, freshness, recent_runs

    settings, services = airflow
    rows = recent_runs(settings, limit=50)
    by_run = {(r["dag_id"], r["run_id"]): r for r in rows}
    _, ingests, refresh = published
    _, reprocess, close, failing = reruns
    for run in [*ingests, refresh, reprocess, close, failing]:
        assert (run.dag_id, run.run_id) in by_run, f"no ops row for {run.dag_id} {run.run_id}"
    assert len(by_run) == len(rows)  # one row per run

    ingest_rows = [by_run[(r.dag_id, r.run_id)] for r in ingests]
    assert sum(r["events_in"] for r in ingest_rows) == len(REPORTS) + 1
    assert sum(r["dead_letters"] for r in ingest_rows) == 1
    assert all(sum(r["consumer_lag"].values()) == 0 for r in ingest_rows)
    assert any(k.startswith(f"{settings.topic_reports}:") for k in ingest_rows[0]["consumer_lag"])
    refreshed = by_run[(refresh.dag_id, refresh.run_id)]
    assert (refreshed["state"], refreshed["periods"]) == ("success", [Q2, Q3])
    assert (refreshed["events_validated"], refreshed["events_accepted"], refreshed["events_quarantined"]) == (5, 4, 1)
    assert {"silver_indicator_values", "gold_indicator_values"} <= set(refreshed["delta_versions"])
    assert by_run[(failing.dag_id, failing.run_id)]["state"] == "failed"
    assert by_run[(close.dag_id, close.run_id)]["delta_versions"].get(FREEZES) is not None

    now = datetime.now(timezone.utc)
    fresh = {r["province_code"]: r for r in freshness(settings)}
    assert fresh["38"]["last_accepted_period"] == Q3 and fresh["38"]["events"] == 3
    assert fresh["01"]["last_event_at"] is None  # Hà Nội sent nothing
    with capsys.disabled():
        print("\n" + format_runs(rows[:6], settings.timezone))
        print(format_freshness([r for r in fresh.values() if r["events"]], now, settings.timezone))
