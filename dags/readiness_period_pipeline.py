"""Readiness reporting pipeline for one reporting period: Kafka -> bronze -> silver -> gold.

The tasks are deliberately thin: each imports its job wrapper from ``readiness.orchestration.tasks``
inside the task (nothing heavy at parse time), builds the environment's settings with
``load_settings()`` and returns the job's counts dict, which Airflow stores as the task's XCom.
"""
from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, task

from readiness.orchestration.dag_support import default_args, fail_fast, period_param, record_run

DOC_MD = """
# Readiness period pipeline

Builds the national ICT-readiness tables for **one reporting period** from the provincial
report submissions that arrive on Kafka (`readiness.report-submissions.v1`).

| task | calls | what it does |
| --- | --- | --- |
| `ingest_reports` | `readiness.orchestration.tasks.run_ingest` | Reads the Kafka events not yet ingested into the Delta table `bronze_report_events` (incremental, exactly once through a checkpoint; one ingest at a time across DAGs). Not period specific: it catches bronze up with the topic. |
| `validate_batch` | `readiness.orchestration.tasks.validate` (`validate_period`) | Validates the period's bronze events into silver; rows that fail row-level checks go to quarantine, an exact re-delivery (same event id, same bytes) is dropped and counted (`events_duplicate`). A province over its quarantine share (`gate_policy.json`) is held back: its new reports wait (`events_held_back`, rows with status `held` in `silver_quarantine`), the other provinces publish, and a `held_back` alert is posted. **Fails the run without retries** if a batch-level quality check fails, so nothing is published. |
| `publish_tables` | `readiness.orchestration.tasks.publish` (`aggregate_period`) | Aggregates the period's silver rows into the gold tables. |
| `record_run` | `readiness.orchestration.run_health.record_airflow_run` | Teardown: writes this run's row to `ops_pipeline_runs` (counts, consumer lag, Delta versions), also when a task failed. |

Each task returns a dict of counts (visible as the task's XCom `return_value`).

**Parameter** `period_id` (required): the reporting period, `YYYY` (year), `YYYYQn` (quarter)
or `YYYYSn` (half year), e.g. `2025`, `2025Q3`, `2025S1`.

**Trigger**: manual, with the `period_id`, or locally with
`python -m readiness.dev.airflow run-dag readiness_period_pipeline --conf '{"period_id": "2025Q3"}'`.
New data is handled without a trigger by `readiness_ingest` → `readiness_refresh_changed`;
period closes by `readiness_period_close`.

**Safe to rerun**: one run at a time (`max_active_runs=1`); the writes replace the period's
partitions only when their content changes, so a rerun over the same data leaves the tables and
their Delta versions as they were. Retries: 2, two minutes apart. A task that fails for good
posts an alert to the webhook (`READINESS_WEBHOOK_URL`).

The environment (local, ci, production) comes from `READINESS_ENV` and the other
`READINESS_*` variables of the Airflow worker, through `readiness.settings.load_settings()`.
"""

# Templated task argument: the run's period, validated against the Param below.
PERIOD_ID = "{{ params.period_id }}"

# The counts dict is one XCom (`return_value`); without multiple_outputs=False the `dict`
# return annotation would make Airflow also push every key as an XCom of its own.


@task(task_id="ingest_reports", multiple_outputs=False)
def ingest_reports() -> dict[str, Any]:
    """Kafka -> bronze: ingest the report events not yet in bronze."""
    from readiness.orchestration.tasks import run_ingest
    from readiness.settings import load_settings

    return run_ingest(load_settings())


@task(task_id="validate_batch", multiple_outputs=False)
def validate_batch(period_id: str) -> dict[str, Any]:
    """Bronze -> silver + quarantine for the period; fails without retries if a batch-level
    quality check fails (the same data would fail again)."""
    from readiness.orchestration.tasks import validate
    from readiness.settings import load_settings

    with fail_fast():
        return validate(load_settings(), period_id)


@task(task_id="publish_tables", multiple_outputs=False)
def publish_tables(period_id: str) -> dict[str, Any]:
    """Silver -> gold tables for the period."""
    from readiness.orchestration.tasks import publish
    from readiness.settings import load_settings

    return publish(load_settings(), period_id)


with DAG(
    dag_id="readiness_period_pipeline",
    description="Kafka report events -> bronze -> silver/quarantine -> gold, for one period",
    doc_md=DOC_MD,
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["readiness", "spark", "delta", "period"],
    default_args=default_args(),
    params={"period_id": period_param()},
):
    ingested = ingest_reports()
    validated = validate_batch(PERIOD_ID)
    published = publish_tables(PERIOD_ID)
    ingested >> validated >> published >> record_run()
