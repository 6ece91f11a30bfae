"""Named exclusive locks under ``<var_dir>/locks``: one ingest at a time, one writer per period.

The ingest shares one Structured Streaming checkpoint, and several DAGs may rebuild the same
period; these locks serialise them across processes (one machine, or a shared filesystem with
working POSIX locks). Airflow's ``max_active_runs=1`` keeps one run per DAG; the locks keep one
writer per period across DAGs. :func:`file_lock` is the one lock helper of the project (the Maven
cache, Data Docs and the Airflow metadata migration use it too).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from readiness.domain.periods import parse_period
from readiness.settings import Settings


@contextlib.contextmanager
def file_lock(path: Path | str, timeout: float = -1, poll: float = 0.5) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (created with its folder) for the block.

    Re-entrant within a thread; other threads and processes wait, up to ``timeout`` seconds
    (``-1``: for ever), then ``TimeoutError`` names the lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    held = FileLock(str(path), thread_local=True, is_singleton=True)
    try:
        held.acquire(timeout=timeout, poll_interval=poll)
    except Timeout:
        raise TimeoutError(f"lock {path} still held after {timeout:.0f}s") from None
    try:
        yield path
    finally:
        held.release()


def lock(settings: Settings, name: str, timeout: float = 4 * 3600, poll: float = 1.0):
    """The lock ``<var_dir>/locks/<name>.lock``: a second ingest or a second rebuild of the same
    period waits for the first instead of racing it on the checkpoint or the partition."""
    return file_lock(Path(settings.var_dir) / "locks" / f"{name}.lock", timeout, poll)


def period_lock(settings: Settings, period_id: str):
    return lock(settings, f"period-{parse_period(period_id).id}")
