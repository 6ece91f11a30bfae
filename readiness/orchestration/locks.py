"""Named exclusive locks under ``<var_dir>/locks``: one ingest at a time, one writer per period.

The ingest shares one Structured Streaming checkpoint, and several DAGs may rebuild the same
period; these locks serialise them across processes (one machine, or a shared filesystem with
working POSIX locks). Airflow's ``max_active_runs=1`` keeps one run per DAG; the locks keep one
writer per period across DAGs. They are :func:`readiness.ops.locks.file_lock`, the project's one
lock helper.
"""
from __future__ import annotations

from pathlib import Path

from readiness.domain.periods import parse_period
from readiness.ops.locks import file_lock
from readiness.settings import Settings


def lock(settings: Settings, name: str, timeout: float = 4 * 3600, poll: float = 1.0):
    """The lock ``<var_dir>/locks/<name>.lock``: a second ingest or a second rebuild of the same
    period waits for the first instead of racing it on the checkpoint or the partition."""
    return file_lock(Path(settings.var_dir) / "locks" / f"{name}.lock", timeout, poll)


def period_lock(settings: Settings, period_id: str):
    return lock(settings, f"period-{parse_period(period_id).id}")
