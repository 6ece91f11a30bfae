"""Period close: the day after a report type's due date, compute compliance, freeze, list missing units."""
from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task
from airflow.timetables.trigger import CronTriggerTimetable

from readiness.orchestration.dag_support import SCHEDULE_TIMEZONE, default_args, fail_fast, period_param, record_run

DOC_MD = """
# Readiness period close

Closes reporting periods at their due dates. The due dates are data
(`readiness/data/reporting_calendar.json`, read by `readiness.domain.periods`), not a cron
expression: provinces set them per report type and they can change without a code change.

**Schedule**: every day at 01:00 Asia/Ho_Chi_Minh (`CronTriggerTimetable("0 1 * * *")`),
`catchup=False`. The first task decides whether anything closes today:

| task | calls | what it does |
| --- | --- | --- |
| `periods_due` (short-circuit) | `readiness.orchestration.calendar.periods_to_close` | The periods whose due date was **yesterday** in Asia/Ho_Chi_Minh (a report is on time until the end of its due date, so the period closes at 00:00 the next day; the hour after gives in-flight events time to be ingested). On any other day it returns `[]` and **every downstream task is skipped**. A manual run with the `period_id` param closes that period whatever the day. |
| `ingest_reports` | `readiness.orchestration.tasks.run_ingest` | Catches bronze up with Kafka so every event that arrived before the close counts. |
| `close_period` (mapped, one per period) | `readiness.orchestration.tasks.close_period` | Compliance: `validate_period` + `aggregate_period`; then **freezes** the published tables: records the Delta version of every `gold_*` table in `gold_period_freezes` (one row per table: `period_id, table_name, version, frozen_at, run_id`; the first freeze wins, a rerun keeps it; `refreeze=true` records the current versions instead); then lists the units still missing (`gold_reporting_completeness.missing_units`, read at the frozen version). |
| `alert_missing_units` | `readiness.orchestration.alerts.alert_missing_units` | Posts a `late_data` alert per period that still has missing units after its due date. |
| `record_run` | `readiness.orchestration.run_health.record_airflow_run` | Teardown: this run's row in `ops_pipeline_runs`. |

With the reference calendar the closes fall on 21 March, 15 June (first half), 21 June,
21 September, 15 December (second half) and 21 December (fourth quarter and year).

Readers of a closed period use the frozen versions (`readiness.orchestration.freezes.read_frozen`).

**Safe to rerun**: `max_active_runs=1`; rebuilding an unchanged period writes nothing; the
freeze is kept.
"""

@task.short_circuit(task_id="periods_due", multiple_outputs=False)
def periods_due(**context: Any) -> list[str]:
    """The periods that close on this run's day (empty: skip everything downstream)."""
    from readiness.orchestration.calendar import periods_to_close

    dag_run = context["dag_run"]
    periods = periods_to_close(dag_run.run_after, context["params"].get("period_id"))
    print(f"run after {dag_run.run_after.isoformat()}: periods closing: {periods or 'none'}")
    return periods


@task(task_id="ingest_reports", multiple_outputs=False)
def ingest_reports() -> dict[str, Any]:
    """Kafka -> bronze, so the close sees every event that has arrived."""
    from readiness.orchestration.tasks import run_ingest
    from readiness.settings import load_settings

    return run_ingest(load_settings())


@task(task_id="close_period", multiple_outputs=False, max_active_tis_per_dagrun=1,
      map_index_template="{{ task.op_kwargs['period_id'] }}")
def close_period(period_id: str, **context: Any) -> dict[str, Any]:
    """Validate + aggregate, freeze the gold tables' versions, list the missing units."""
    from readiness.orchestration.tasks import close_period as close
    from readiness.settings import load_settings

    with fail_fast():
        result = close(load_settings(), period_id, context["run_id"], bool(context["params"].get("refreeze")))
    for province, units in result["missing_units"].items():
        print(f"{period_id}: province {province} still missing {len(units)} units: {', '.join(units)}")
    return result


@task(task_id="alert_missing_units", multiple_outputs=False)
def alert_missing_units(closed: list[dict[str, Any]], **context: Any) -> dict[str, Any]:
    """One late-data alert per period that still has missing units."""
    from readiness.orchestration.alerts import alert_missing_units as alert
    from readiness.settings import load_settings

    return alert(load_settings(), list(closed), context["dag"].dag_id, context["run_id"])


with DAG(
    dag_id="readiness_period_close",
    description="Daily 01:00 Hanoi: close the periods due yesterday (compliance, freeze, missing units)",
    doc_md=DOC_MD,
    schedule=CronTriggerTimetable("0 1 * * *", timezone=SCHEDULE_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    tags=["readiness", "spark", "delta", "period", "close"],
    default_args=default_args(),
    params={
        "period_id": period_param(default=None, type=["null", "string"], title="Period to close (manual)",
                                  description="Empty: the periods due yesterday. Set: close this period now."),
        "refreeze": Param(False, type="boolean", title="Record new freeze versions",
                          description="Replace an existing freeze with the current gold versions"),
    },
):
    due = periods_due()
    ingested = ingest_reports()
    closed = close_period.expand(period_id=due)
    due >> ingested >> closed
    alert_missing_units(closed) >> record_run()
