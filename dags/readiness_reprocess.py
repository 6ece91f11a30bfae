"""Reprocess: rebuild any chosen period (and check a methodology version) from bronze."""
from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from readiness.orchestration.dag_support import default_args, fail_fast, period_param, record_run

DOC_MD = """
# Readiness reprocess

Rebuilds silver and gold for **any chosen period** from what is in bronze, with the same
functions as every other DAG (`validate_period`, `aggregate_period`). For corrections
(a province resent reports, the reference data or a rule changed) and after a fix.

| task | calls | what it does |
| --- | --- | --- |
| `rebuild_period` | `readiness.orchestration.tasks.rebuild_period` | Checks `methodology_version` first (unknown: the task **fails at once, no retries**), then validates and aggregates the period under its lock; with `refreeze=true` records the rebuilt gold versions as the period's freeze. Returns the counts, the Delta versions written and the methodology's index row count. |
| `record_run` | `readiness.orchestration.run_health.record_airflow_run` | Teardown: this run's row in `ops_pipeline_runs`. |

**Parameters**: `period_id` (required, e.g. `2026Q3`), `methodology_version` (optional,
`ict-index` or `ict-index.v1`: the aggregation scores every shipped methodology at its shipped
version; the parameter names the one to check and count), `refreeze` (default false).

**Safe to rerun**: over unchanged bronze data nothing is rewritten: the gold tables keep their
content and their Delta versions. `max_active_runs=1`.

Trigger: `airflow dags trigger readiness_reprocess --conf '{"period_id": "2026Q3"}'`.
"""

@task(task_id="rebuild_period", multiple_outputs=False)
def rebuild_period(**context: Any) -> dict[str, Any]:
    """Validate + aggregate the chosen period (bad methodology or quality gate: fail, no retry)."""
    from readiness.orchestration.tasks import rebuild_period as rebuild
    from readiness.settings import load_settings

    params = context["params"]
    with fail_fast(ValueError):  # a bad parameter or bad data: a retry would fail again
        return rebuild(load_settings(), params["period_id"], params.get("methodology_version"),
                       bool(params.get("refreeze")), context["run_id"])


with DAG(
    dag_id="readiness_reprocess",
    description="Rebuild a chosen period (and check a methodology version) from bronze",
    doc_md=DOC_MD,
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["readiness", "spark", "delta", "period", "reprocess"],
    default_args=default_args(),
    params={
        "period_id": period_param(),
        "methodology_version": Param(None, type=["null", "string"], title="Methodology (optional)",
                                     description="e.g. ict-index or ict-index.v1"),
        "refreeze": Param(False, type="boolean", title="Record the rebuilt versions as the period's freeze"),
    },
):
    rebuild_period() >> record_run()
