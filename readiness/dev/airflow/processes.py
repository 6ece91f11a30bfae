"""Supervising the Airflow child processes: copying their output to a log, stopping their
process groups, waiting for an HTTP endpoint to answer, and the tail of a log for messages.

Every child is started in its own session (``start_new_session=True``), so its process group
holds what it starts in turn (Spark's JVM, the LocalExecutor's task workers) and is stopped whole.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterable, Mapping
from typing import TextIO

import psutil

LOG_TAIL_LINES = 80


def last_lines(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text`` (the tail of a log, for an error message)."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def pump(stream: TextIO, log: TextIO, tail: deque[str], echo: bool) -> None:
    """Copy ``stream`` line by line to ``log`` (and to stderr if ``echo``), keeping its last
    lines in ``tail``; returns at the end of the stream (run it in a thread)."""
    for line in stream:
        log.write(line)
        log.flush()
        text = line.rstrip()
        # Spark's console progress bars would crowd the traceback out of the tail.
        if text and not text.startswith("[Stage "):
            tail.append(text)
        if echo:
            sys.stderr.write(line)
            sys.stderr.flush()


def kill_group(proc: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM the process group of ``proc``, SIGKILL it if still alive after ``grace`` s; then
    SIGKILL, by pid, any of its descendants still alive ``grace`` s later: a busy Spark driver JVM
    outlived the SIGTERM that stopped its Python parent, and kept both cores busy."""
    descendants: list[psutil.Process] = []
    with contextlib.suppress(psutil.NoSuchProcess):
        descendants = psutil.Process(proc.pid).children(recursive=True)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _, alive = psutil.wait_procs(descendants, timeout=grace)
    for child in alive:  # ours: seen as a descendant of the process we started
        with contextlib.suppress(psutil.NoSuchProcess):
            child.send_signal(signal.SIGKILL)
    psutil.wait_procs(alive, timeout=grace)


def stop_groups(procs: Iterable[subprocess.Popen], timeout: float = 30) -> None:
    """SIGTERM each process group of ``procs`` at once, SIGKILL what is left after ``timeout``."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # Children left in the group (the scheduler's task workers): make sure none is left.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def wait_http(url: str, procs: Mapping[str, subprocess.Popen], timeout: float) -> bool:
    """Until ``url`` answers 200 (True), one of ``procs`` exits or ``timeout`` s pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs.values()):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    return False
