"""A Spark standalone cluster on loopback: one master and ``settings.spark_workers`` workers.

Every daemon is :mod:`readiness.ops.spark_node` (the launcher the ``docker/`` services run too), which
``exec``s pyspark's own ``bin/spark-class``, which ``exec``s the JVM: the pid the
:class:`~readiness.dev.daemon.Daemon` records is the JVM's. Each has its own directory under
``<var_dir>/spark/`` (``master/``, ``worker-<n>/`` with ``work/`` for the executors' directories,
``local/`` for their shuffle files, and the log). Ports: the master's RPC and web UI ports come from ``spark_master`` and ``spark_master_ui``;
worker ``i`` listens on the master's port ``+ 1 + i`` and serves its UI on the master UI's port
``+ 1 + i`` (fixed, so ``up`` is idempotent and a restarted worker is found again; a taken port makes
the worker exit at once, ``spark.port.maxRetries=0``, instead of silently moving).

What the cluster ran is read from Spark's own JSON endpoints: the master's ``/json/`` (``workers``
with ``id``, ``port``, ``webuiaddress``, ``state``; ``activeapps``/``completedapps``) and each worker's
``/json/`` (``executors`` and ``finishedexecutors``, each with ``appid`` and ``id``) — the master's
JSON names no executors, the workers' do, also after the application ended.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from readiness.dev.daemon import Daemon, DaemonError
from readiness.ops.spark_node import MARKER_PROPERTY, node_home, port_of, spark_root
from readiness.settings import Settings, settings_env

# The Executor's log lines for a task it starts, and for one that ends (finished, failed or killed).
TASK_STARTED = re.compile(r"Executor: Running task \S+ in stage \S+ \(TID (\d+)\)")
TASK_ENDED = re.compile(r"Executor: (?:Finished task|Exception in task|Executor killed task|"
                        r"Executor interrupted and killed task)\S* .*?\(TID (\d+)\)")


class SparkClusterError(RuntimeError):
    """The cluster did not come up, or an endpoint did not answer."""


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback URL from settings)
        return json.load(response)


class SparkCluster:
    """The master and workers of ``settings`` (``spark_master``, ``spark_master_ui``, ``spark_workers``,
    ``spark_worker_cores``, ``spark_worker_memory``, ``var_dir``).

    ``master`` and ``workers`` are the :class:`Daemon` objects (``workers[i].kill()`` SIGKILLs worker
    ``i``'s JVM by pid); :meth:`start` / :meth:`stop` bring all of them up / down.
    """

    def __init__(self, settings: Settings) -> None:
        if not settings.spark_master.startswith("spark://") or not settings.spark_master_ui:
            raise SparkClusterError(f"not a standalone master: {settings.spark_master!r} / "
                                    f"UI {settings.spark_master_ui!r}")
        self.settings = settings
        self.root = spark_root(settings)
        self.master_port = port_of(settings.spark_master)
        self.ui_url = settings.spark_master_ui.rstrip("/")
        self.ui_port = port_of(self.ui_url)
        self.master = self._daemon("spark-master", node_home(settings, "master"), ["master"], ready=self._master_alive)
        self.workers = [self._worker(i) for i in range(settings.spark_workers)]

    # -- daemons ---------------------------------------------------------------------------------

    def worker_port(self, i: int) -> int:
        return self.master_port + 1 + i

    def worker_work_dir(self, i: int) -> Path:
        """Where worker ``i`` (from 0) puts each executor's directory (``<app id>/<executor id>/``, its cwd)."""
        return node_home(self.settings, "worker", i + 1) / "work"

    def _worker(self, i: int) -> Daemon:
        return self._daemon(
            f"spark-worker-{i + 1}", node_home(self.settings, "worker", i + 1),
            ["worker", "--index", str(i + 1), "--port", str(self.worker_port(i)),
             "--webui-port", str(self.ui_port + 1 + i)],
            ready=lambda: self._worker_entry(i) is not None)

    def _daemon(self, name: str, home: Path, args: list[str], ready) -> Daemon:
        """A daemon run by :mod:`readiness.ops.spark_node` (the launcher ``docker/`` runs too) with these
        settings in its environment."""
        env = {**os.environ, **settings_env(self.settings)}
        command = [sys.executable, "-m", "readiness.ops.spark_node", *args, "--host", "127.0.0.1"]
        return Daemon(name=name, command=command, cwd=home, log=home / f"{name}.log",
                      pid_file=home / f"{name}.pid", marker=f"{MARKER_PROPERTY}{home}", env=env, ready=ready)

    def start(self, timeout: float = 120.0) -> None:
        """Start the master, then the workers; returns when the master lists every worker ALIVE."""
        deadline = time.monotonic() + timeout
        self.master.start()
        self.master.wait_ready(max(1.0, deadline - time.monotonic()))
        for worker in self.workers:
            worker.start()
        for worker in self.workers:
            worker.wait_ready(max(1.0, deadline - time.monotonic()))

    def restart_worker(self, i: int, timeout: float = 90.0) -> None:
        """Start worker ``i`` again (after a kill) and wait until the master lists it ALIVE."""
        self.workers[i].start()
        self.workers[i].wait_ready(timeout)

    def stop(self) -> None:
        """Workers first (their executors die with them), then the master."""
        for worker in self.workers:
            worker.stop()
        self.master.stop()

    # -- endpoints -------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The master's ``/json/``: ``status``, ``workers``, ``aliveworkers``, ``activeapps``, ``completedapps``..."""
        try:
            return get_json(f"{self.ui_url}/json/")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SparkClusterError(f"the master's UI {self.ui_url} does not answer: {exc}") from exc

    def _master_alive(self) -> bool:
        try:
            return self.state().get("status") == "ALIVE"
        except SparkClusterError:
            return False

    def _worker_entry(self, i: int) -> dict[str, Any] | None:
        """Worker ``i``'s ALIVE entry in the master's ``workers`` (matched by its RPC port), else None."""
        try:
            workers = self.state().get("workers", [])
        except SparkClusterError:
            return None
        alive = [w for w in workers if w.get("port") == self.worker_port(i) and w.get("state") == "ALIVE"]
        return alive[-1] if alive else None

    def worker_id(self, i: int) -> str:
        entry = self._worker_entry(i)
        if entry is None:
            raise SparkClusterError(f"worker {i} is not ALIVE at the master")
        return str(entry["id"])

    def applications(self) -> list[dict[str, Any]]:
        """Running and completed applications as the master lists them (``id``, ``name``, ``state``...)."""
        state = self.state()
        return [*state.get("activeapps", []), *state.get("completedapps", [])]

    def application_ids(self) -> set[str]:
        """The ids of every application the master lists, running or completed."""
        return {str(app["id"]) for app in self.applications()}

    def worker_states(self) -> dict[str, dict[str, Any]]:
        """``worker id -> its /json/`` for every worker the master lists ALIVE (a dead one has no UI)."""
        states = {}
        for worker in self.state().get("workers", []):
            if worker.get("state") != "ALIVE":
                continue
            try:
                states[str(worker["id"])] = get_json(f"{str(worker['webuiaddress']).rstrip('/')}/json/")
            except (urllib.error.URLError, OSError, ValueError):
                continue  # died between the master's answer and ours
        return states

    def executors_by_worker(self, app_id: str, running_only: bool = False) -> dict[str, int]:
        """``worker id -> executors of app_id`` it runs (and, unless ``running_only``, ran), from the
        workers' own JSON; workers without any are left out."""
        counts: dict[str, int] = {}
        for worker_id, state in self.worker_states().items():
            lists = ["executors"] if running_only else ["executors", "finishedexecutors"]
            n = sum(1 for key in lists for e in state.get(key, []) if e.get("appid") == app_id)
            if n:
                counts[worker_id] = n
        return counts

    def executor_pids(self, i: int, app_id: str | None = None, with_tasks: bool = False) -> list[int]:
        """The executor JVMs worker ``i`` launched (of ``app_id``, else of any app), by pid: its child
        processes whose working directory is an executor directory in its work dir
        (``<work>/<app id>/<executor id>``).

        ``with_tasks``: only executors that have received a task. The workers' JSON lists an executor
        as soon as the master asks for it, before its JVM runs (let alone its WorkerWatcher, which
        stops it when its worker dies); an executor fetches the application's jars (``spark.jars``)
        into its directory with its first task, so a jar there means it is up and working.
        """
        pid = self.workers[i].pid()
        if pid is None:
            return []
        work = self.worker_work_dir(i).resolve()
        found = []
        try:
            children = psutil.Process(pid).children()
        except psutil.NoSuchProcess:
            return []
        for child in children:
            try:
                cwd = Path(child.cwd()).resolve()
            except (psutil.Error, OSError):
                continue
            if cwd.parent.parent != work or app_id not in (None, cwd.parent.name):
                continue
            if with_tasks and not any(cwd.glob("*.jar")):
                continue
            found.append(child.pid)
        return found

    def running_tasks(self, i: int, app_id: str) -> set[int]:
        """The task ids (TID) that ``app_id``'s executors on worker ``i`` have started and not yet
        ended, from each executor's ``stderr`` in the worker's work dir (the executors' log4j2 keeps
        the Executor's INFO line for each task it starts and ends)."""
        started: set[int] = set()
        ended: set[int] = set()
        for log in (self.worker_work_dir(i) / app_id).glob("*/stderr"):
            try:
                text = log.read_text(errors="replace")
            except OSError:
                continue
            started.update(int(tid) for tid in TASK_STARTED.findall(text))
            ended.update(int(tid) for tid in TASK_ENDED.findall(text))
        return started - ended

    def wait_until(self, predicate, timeout: float, what: str, interval: float = 0.5) -> Any:
        """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` s pass."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = predicate()
            except SparkClusterError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise SparkClusterError(f"{what}: not within {timeout:.0f} s")
            time.sleep(interval)


__all__ = ["DaemonError", "SparkCluster", "SparkClusterError"]
