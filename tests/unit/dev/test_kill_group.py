"""A stopped process group takes everything its process started with it (a timed-out DAG run or
benchmark worker), also a child that ignores SIGTERM, as a busy Spark driver JVM did."""
from __future__ import annotations

import subprocess
import sys

import psutil

from readiness.dev.airflow.processes import kill_group

# The worker: starts a child that ignores SIGTERM, prints the child's pid, then waits to be stopped.
WORKER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(120)"],
    stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
time.sleep(120)
"""


def test_a_child_that_ignores_sigterm_is_killed_with_the_group():
    proc = subprocess.Popen([sys.executable, "-c", WORKER], stdout=subprocess.PIPE, text=True, start_new_session=True)
    child = psutil.Process(int(proc.stdout.readline()))
    try:
        assert child.is_running()
        kill_group(proc)
        assert proc.returncode is not None
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    finally:  # whatever failed above, nothing of the test's outlives it (by the pids it started)
        for leftover in (child, psutil.Process(proc.pid) if proc.poll() is None else None):
            if leftover is not None and leftover.is_running():
                leftover.kill()
