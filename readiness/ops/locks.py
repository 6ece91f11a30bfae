"""The project's one file lock: exclusive, across processes, re-entrant within a thread.

Used for the Maven jar cache, Data Docs builds, the Airflow metadata migration and (through
:mod:`readiness.orchestration.locks`) the ingest and period locks. ``filelock`` holds an ``flock``
on the file (one machine, or a shared filesystem with working POSIX locks).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout


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
