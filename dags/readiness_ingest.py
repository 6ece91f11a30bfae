"""Continuous ingest: every 5 minutes, Kafka -> bronze; an asset event when new report rows arrived."""
from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, task
from airflow.timetables.trigger import CronTriggerTimetable

from readiness.orchestration.dag_support import BRONZE_ASSET as BRONZE
from readiness.orchestration.dag_support import SCHEDULE_TIMEZONE, default_args, record_run
from readiness.settings import load_settings

# The cadence is deployment configuration (read when the dag-processor parses this file).
INGEST_CRON = load_settings().ingest_cron

DOC_MD = """
# Readiness ingest (every 5 minutes)

Keeps `bronze_report_events` caught up with the Kafka topics, and tells the data-aware DAGs
when something new arrived.

| task | calls | what it does |
| --- | --- | --- |
| `ingest_reports` | `readiness.orchestration.tasks.run_ingest` | Structured Streaming `availableNow` run over the ingest checkpoint: reads exactly the offsets not yet ingested (nothing lost, nothing doubled). Finds the **periods that received bronze rows** from the Delta log of `bronze_report_events` (partition values of the files this run added). |
| `announce_bronze` | – | Emits the asset event **`bronze_report_events`** with extra `{"periods": [...], "bronze_version": n, ...}` when new report rows arrived; **skipped** otherwise (a skipped task emits no asset event). `readiness_refresh_changed` is scheduled on this asset. |
| `check_silence` | `readiness.orchestration.alerts.check_silence` | SLA-like check: posts an `ingest_silence` alert to the webhook once when no event has arrived for `READINESS_INGEST_SILENCE_HOURS` hours (default 24, 0 = off). |
| `record_run` | `readiness.orchestration.run_health.record_airflow_run` | Teardown: this run's row in `ops_pipeline_runs` (events in, bronze rows, target plans, dead letters, already in bronze, consumer lag per partition, Delta versions written). |

**Schedule**: `*/5 * * * *` (CronTriggerTimetable, Asia/Ho_Chi_Minh; another cadence with
`READINESS_INGEST_CRON` in the dag-processor's environment), `catchup=False`: a missed tick is
not replayed (the next run reads everything not yet ingested anyway); `run_immediately=True`:
a newly deployed DAG runs at once for the latest tick. One run at a time (`max_active_runs=1`),
and one ingest at a time across DAGs (a lock in `run_ingest`).

**Safe to rerun**: the checkpoint decides what is read; a rerun with nothing new writes nothing.
"""


@task(task_id="ingest_reports", multiple_outputs=False)
def ingest_reports() -> dict[str, Any]:
    """Kafka -> bronze, and the periods that received rows."""
    from readiness.orchestration.tasks import run_ingest
    from readiness.settings import load_settings

    return run_ingest(load_settings())


@task(task_id="announce_bronze", outlets=[BRONZE], multiple_outputs=False)
def announce_bronze(counts: dict[str, Any], **context: Any) -> list[str]:
    """Emit the bronze asset event with the changed periods, or skip (no event) if there are none."""
    from airflow.exceptions import AirflowSkipException

    periods = counts.get("periods") or []
    if not periods:
        raise AirflowSkipException("no new report rows in bronze: no asset event")
    context["outlet_events"][BRONZE].extra = {
        "periods": periods,
        "bronze_version_before": counts.get("bronze_version_before"),
        "bronze_version": counts.get("bronze_version"),
        "events_in": counts.get("events_in"),
        "bronze_rows": counts.get("bronze_rows"),
    }
    return periods


@task(task_id="check_silence", multiple_outputs=False)
def check_silence(counts: dict[str, Any], **context: Any) -> dict[str, Any]:
    """Alert once when no event has arrived for READINESS_INGEST_SILENCE_HOURS hours."""
    from readiness.orchestration.alerts import check_silence as check
    from readiness.settings import load_settings

    return check(load_settings(), counts.get("last_event_at"), dag_id=context["dag"].dag_id,
                 run_id=context["run_id"])


with DAG(
    dag_id="readiness_ingest",
    description="Every 5 minutes: Kafka -> bronze; asset event bronze_report_events when new reports arrived",
    doc_md=DOC_MD,
    schedule=CronTriggerTimetable(INGEST_CRON, timezone=SCHEDULE_TIMEZONE, run_immediately=True),
    catchup=False,
    max_active_runs=1,
    tags=["readiness", "spark", "delta", "ingest"],
    default_args=default_args(),
):
    counts = ingest_reports()
    announced = announce_bronze(counts)
    silence = check_silence(counts)
    [announced, silence] >> record_run()
