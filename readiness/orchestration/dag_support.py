"""What the DAG files share: task defaults, the bronze asset, the period parameter, the fail-fast
rule and the ``record_run`` teardown.

Imported when the DAG processor parses the DAG files, so it imports Airflow's SDK and the light
parts of the project only (the domain, settings, alerts): no Spark, Delta, Great Expectations or
Kafka client. A task's body imports :mod:`readiness.orchestration.tasks` (the Spark side) inside
its callable, which runs on the worker.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from airflow.exceptions import AirflowFailException
from airflow.sdk import Asset, Param, task, teardown

from readiness.domain.periods import PERIOD_ID_HELP, PERIOD_ID_PATTERN, REPORTING_TIMEZONE
from readiness.lake.tables import BRONZE_REPORTS
from readiness.orchestration.alerts import task_failure_callback
from readiness.quality.errors import QualityGateError

# The Airflow asset the ingest DAG updates when new report events reach bronze.
BRONZE_ASSET_NAME = BRONZE_REPORTS
BRONZE_ASSET_URI = f"x-readiness://lake/{BRONZE_REPORTS}"
BRONZE_ASSET = Asset(name=BRONZE_ASSET_NAME, uri=BRONZE_ASSET_URI, group="readiness")

# Cron schedules are read in the reporting calendar's time zone.
SCHEDULE_TIMEZONE = REPORTING_TIMEZONE


# The Airflow Variable that overrides the retry delay (seconds), read in its environment form
# ``AIRFLOW_VAR_TASK_RETRY_DELAY_SECONDS`` only: the DAG files are parsed often, and a Variable stored in
# the metadata database would cost a call per parse. The cluster profile sets it (a task lost with its
# Celery worker is retried after seconds, not minutes); production keeps the two minutes.
RETRY_DELAY_VARIABLE = "task_retry_delay_seconds"


def configured_retry_delay(default: timedelta) -> timedelta:
    """``default``, or the seconds of the ``task_retry_delay_seconds`` Variable's environment form."""
    value = os.environ.get(f"AIRFLOW_VAR_{RETRY_DELAY_VARIABLE.upper()}", "").strip()
    return timedelta(seconds=float(value)) if value else default


def default_args(retries: int = 2, retry_delay: timedelta | None = None,
                 execution_timeout: timedelta = timedelta(hours=2)) -> dict[str, Any]:
    """The platform's task defaults: owner, retries with a delay (2 min unless
    :func:`configured_retry_delay` says otherwise), timeout, failure alert."""
    if retry_delay is None:
        retry_delay = configured_retry_delay(timedelta(minutes=2))
    return {
        "owner": "data-platform",
        "retries": retries,
        "retry_delay": retry_delay,
        "execution_timeout": execution_timeout,
        "on_failure_callback": task_failure_callback,
    }


def period_param(**overrides: Any) -> Param:
    """The ``period_id`` parameter, checked against the period pattern before a run starts."""
    return Param(**{"type": "string", "pattern": PERIOD_ID_PATTERN, "title": "Reporting period",
                    "description": PERIOD_ID_HELP, **overrides})


def period_list_param(**overrides: Any) -> Param:
    """A list of period ids (empty by default), each checked against the period pattern."""
    return Param(**{"default": [], "type": "array", "items": {"type": "string", "pattern": PERIOD_ID_PATTERN},
                    "title": "Periods", "description": f"period ids ({PERIOD_ID_HELP})", **overrides})


@contextlib.contextmanager
def fail_fast(*errors: type[BaseException]) -> Iterator[None]:
    """Turn a failed quality gate (and ``errors``) into a failure without retries: the same data
    or the same parameter would fail again."""
    try:
        yield
    except (QualityGateError, *errors) as exc:
        raise AirflowFailException(str(exc)) from exc


def _record_run(**context: Any) -> dict[str, Any]:
    """Write this run's row to ops_pipeline_runs from the other tasks' XComs."""
    from readiness.orchestration.run_health import record_airflow_run

    return record_airflow_run(context)


def record_run() -> Any:
    """The DAG's ``record_run`` teardown task (call it inside the DAG's context, once per DAG).

    Runs even when an upstream task failed and does not decide the run's state. A decorated task
    cannot be shared between DAGs (the teardown sets its trigger rule when first used), so each
    call decorates anew.
    """
    return teardown(task(task_id="record_run", multiple_outputs=False)(_record_run))()
