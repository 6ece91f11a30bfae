"""Data-aware: validate and aggregate every period that received events, when bronze is updated."""
from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, task

from readiness.orchestration.dag_support import BRONZE_ASSET as BRONZE
from readiness.orchestration.dag_support import default_args, fail_fast, period_list_param, record_run

DOC_MD = """
# Readiness: refresh the periods that changed (asset-scheduled)

Runs when the asset **`bronze_report_events`** is updated, i.e. after a `readiness_ingest` run
that brought new report rows, and rebuilds silver and gold for exactly the periods that
received them.

| task | calls | what it does |
| --- | --- | --- |
| `find_changed_periods` | `readiness.orchestration.calendar.periods_from_events` | Union of the `periods` in the extras of the asset events that triggered this run (several ingest runs may be folded into one run here), plus the `periods` param for a manual run. |
| `refresh_period` (mapped, one per period) | `readiness.orchestration.tasks.refresh_period` | `validate_period` then `aggregate_period` for the period (the same functions as `readiness_period_pipeline`), under the period's lock. A failed batch-level quality check fails that period only, without retries; a province over its quarantine share is held back (its new reports wait, the others publish, a `held_back` alert is posted) without failing the period. |
| `record_run` | `readiness.orchestration.run_health.record_airflow_run` | Teardown: this run's row in `ops_pipeline_runs`. |

**Schedule**: `[Asset("bronze_report_events")]`, `catchup=False`, `max_active_runs=1`.
Mapped periods run one at a time (`max_active_tis_per_dagrun=1`: one Spark driver per run).

**Safe to rerun**: the writes replace a period's partitions only when their content changes.
"""


@task(task_id="find_changed_periods", multiple_outputs=False)
def find_changed_periods(**context: Any) -> list[str]:
    """The periods named by the triggering bronze asset events (and the `periods` param)."""
    from readiness.orchestration.calendar import periods_from_events

    events = context["triggering_asset_events"]
    extras = [event.extra for event in events[BRONZE]] if BRONZE in events else []
    periods = periods_from_events(extras, context["params"].get("periods") or [])
    print(f"{len(extras)} bronze asset event(s); periods to refresh: {periods or 'none'}")
    return periods


@task(task_id="refresh_period", multiple_outputs=False, max_active_tis_per_dagrun=1,
      map_index_template="{{ task.op_kwargs['period_id'] }}")
def refresh_period(period_id: str) -> dict[str, Any]:
    """validate_period + aggregate_period for one period."""
    from readiness.orchestration.tasks import refresh_period as refresh
    from readiness.settings import load_settings

    with fail_fast():
        return refresh(load_settings(), period_id)


with DAG(
    dag_id="readiness_refresh_changed",
    description="On new bronze data: validate + aggregate every period that received events",
    doc_md=DOC_MD,
    schedule=[BRONZE],
    catchup=False,
    max_active_runs=1,
    tags=["readiness", "spark", "delta", "data-aware"],
    default_args=default_args(),
    params={
        "periods": period_list_param(title="Periods (manual runs)",
                                     description="Extra periods to refresh; asset-triggered runs take them from the events"),
    },
):
    periods = find_changed_periods()
    refreshed = refresh_period.expand(period_id=periods)
    refreshed >> record_run()
