"""Watchdog of the streaming service: every few minutes, alert when it is down or falling behind."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, task
from airflow.timetables.trigger import CronTriggerTimetable

from readiness.orchestration.dag_support import SCHEDULE_TIMEZONE, default_args
from readiness.settings import load_settings

WATCH_CRON = load_settings().stream_watch_cron

DOC_MD = """
# Readiness streaming service watchdog (every 5 minutes)

For deployments that run `readiness stream` (the streaming mode) instead of, or beside, the
scheduled ingest. Reads the service's health document (`<var_dir>/stream/health.json`, rewritten
by the service every few seconds) and judges it.

| task | calls | what it does |
| --- | --- | --- |
| `check_stream` | `readiness.orchestration.stream_health.check_stream` | `running` or `stopped` (stopped cleanly, by SIGTERM): nothing. **`down`** (the process is gone, failed, or has not written a heartbeat for `READINESS_STREAM_MAX_SILENCE_S` seconds, default 300) or **`behind`** (more than `READINESS_STREAM_MAX_LAG` offsets not yet read, default 20,000): a `stream_down` / `stream_behind` alert to the webhook. `never` (the service never ran here): nothing. |

**Schedule**: `*/5 * * * *` (`READINESS_STREAM_WATCH_CRON`), `catchup=False`, one run at a time.
No Spark: the check reads one file and the process table.
"""


@task(task_id="check_stream", multiple_outputs=False)
def check_stream() -> dict[str, Any]:
    """Judge the streaming service from its health document; alert when down or behind."""
    from readiness.orchestration.stream_health import check_stream as check
    from readiness.settings import load_settings

    judged = check(load_settings())
    print(f"streaming service: {judged.status} ({judged.reason})")
    return {"status": judged.status, "reason": judged.reason}


with DAG(
    dag_id="readiness_stream_watch",
    description="Every 5 minutes: alert when the streaming service is down or falling behind",
    doc_md=DOC_MD,
    schedule=CronTriggerTimetable(WATCH_CRON, timezone=SCHEDULE_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    tags=["readiness", "streaming", "watchdog"],
    default_args=default_args(retry_delay=timedelta(minutes=1)),
):
    check_stream()
