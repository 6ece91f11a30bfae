"""Airflow of the cluster profile on this machine: PostgreSQL metadata, the CeleryExecutor on Redis,
its API server, scheduler, DAG processor and ``settings.celery_workers`` Celery workers.

Every process is a :class:`~readiness.dev.daemon.Daemon` with its pid file under
``<airflow_home>/run/`` and its log under ``<airflow_home>/logs/cluster/``, so the services outlive the
command that started them (``python -m readiness.dev.cluster up``) and a later command finds, stops or
kills them through the pid files::

    cluster = AirflowCluster(settings)
    cluster.start(timeout=300)
    run_id = cluster.api.trigger("readiness_period_pipeline", {"period_id": "2026Q3"})
    cluster.api.wait_for_run("readiness_period_pipeline", run_id)
    cluster.workers[0].kill()          # SIGKILL one Celery worker by its pid
    cluster.status()
    cluster.stop()

Each Celery worker (``airflow celery worker --concurrency 1``) has its own Celery node name
``worker-<i>@<host>``, its own log-server port, and records itself in the task instances it runs as
host ``worker-<i>.<host>`` (Airflow's ``[core] hostname_callable`` is :func:`worker_hostname`): on one
machine every worker would otherwise report the same host name. Retries after a lost worker: see
:func:`readiness.dev.airflow.env.celery_env`.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from readiness.dev.airflow.env import airflow_cmd, airflow_env, masked_db_url, metadata_db_url, password_file
from readiness.dev.airflow.migrate import ensure_admin_password, init_db
from readiness.dev.airflow.rest import AirflowApi
from readiness.dev.daemon import Daemon, DaemonError, pid_alive, tail
from readiness.dev.postgres import LocalPostgres
from readiness.dev.redis import LocalRedis
from readiness.settings import Settings

# The worker's name in the task instances it runs (read by worker_hostname in the task's process).
WORKER_HOSTNAME_ENV = "CLUSTER_WORKER_HOSTNAME"
HOSTNAME_CALLABLE = f"{__name__}.worker_hostname"
SERVICES = ("api-server", "scheduler", "dag-processor")


def worker_hostname() -> str:
    """Airflow's ``hostname_callable``: a Celery worker's own name, else the machine's FQDN."""
    return os.environ.get(WORKER_HOSTNAME_ENV) or socket.getfqdn()


class ClusterApi(AirflowApi):
    """The REST API of the cluster's API server; its waits stop early when a service has died."""

    def __init__(self, cluster: "AirflowCluster") -> None:
        super().__init__(cluster.settings, cluster.settings.airflow_port)
        self._cluster = cluster

    def exited(self) -> list[str]:
        return [name for name, daemon in self._cluster.service_daemons().items() if not daemon.running()]

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(f"--- {d.log}\n{tail(d.log, lines)}" for d in self._cluster.service_daemons().values())


class AirflowCluster:
    """PostgreSQL, Redis and the Airflow daemons of ``settings`` (``airflow_executor`` CeleryExecutor)."""

    def __init__(self, settings: Settings, dags_folder: Path | str | None = None, log_level: str = "INFO",
                 host: str = "127.0.0.1", extra_env: dict[str, str] | None = None,
                 worker_log_ports: list[int] | None = None) -> None:
        if settings.airflow_executor != "CeleryExecutor" or settings.celery_workers < 1:
            raise ValueError("AirflowCluster needs airflow_executor CeleryExecutor and celery_workers >= 1")
        self.settings = settings
        self.dags_folder = dags_folder
        self.host = host
        self.postgres = LocalPostgres(settings)
        self.redis = LocalRedis(settings)
        self.run_dir = settings.airflow_home / "run"
        self.log_dir = settings.airflow_home / "logs" / "cluster"
        self.env = airflow_env(settings, dags_folder, log_level=log_level)
        self.env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = HOSTNAME_CALLABLE
        self.env.update(extra_env or {})
        self.node = socket.gethostname()
        self._worker_log_ports = worker_log_ports
        self.api = ClusterApi(self)
        self.daemons: dict[str, Daemon] = {}
        port = str(settings.airflow_port)
        # Markers: what the command line still holds after Airflow and Celery retitle the process.
        self._add("api-server", airflow_cmd("api-server", "--port", port, "--host", host), f"port:{port}",
                  self._api_healthy)
        self._add("scheduler", airflow_cmd("scheduler"), "scheduler", lambda: self._component_healthy("scheduler"))
        self._add("dag-processor", airflow_cmd("dag-processor"), "dag-processor",
                  lambda: self._component_healthy("dag_processor"))
        for i in range(1, settings.celery_workers + 1):
            name = self.celery_name(i)
            env = {WORKER_HOSTNAME_ENV: f"worker-{i}.{self.node}",
                   "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._log_server_port(i))}
            cmd = airflow_cmd("celery", "worker", "--concurrency", "1", "--celery-hostname", name)
            self._add(f"celery-worker-{i}", cmd, name, lambda name=name: name in self.ping_workers(), env)

    def _add(self, name: str, command: list[str], marker: str, ready: Any, env: dict[str, str] | None = None) -> None:
        self.daemons[name] = Daemon(
            name=name, command=command, cwd=self.settings.airflow_home, log=self.log_dir / f"{name}.log",
            pid_file=self.run_dir / f"{name}.pid", marker=marker, env={**self.env, **(env or {})}, ready=ready)

    def _log_server_port(self, i: int) -> int:
        """Worker ``i``'s log server: ``worker_log_ports[i - 1]``, else the API port's neighbours above (the
        cluster profile keeps them free)."""
        if self._worker_log_ports:
            return self._worker_log_ports[i - 1]
        return self.settings.airflow_port + i

    def celery_name(self, i: int) -> str:
        return f"worker-{i}@{self.node}"

    # -- the parts

    @property
    def workers(self) -> list[Daemon]:
        """The Celery workers' daemons, worker 1 first."""
        return [self.daemons[f"celery-worker-{i}"] for i in range(1, self.settings.celery_workers + 1)]

    def service_daemons(self) -> dict[str, Daemon]:
        return {name: self.daemons[name] for name in SERVICES}

    def worker_for_host(self, hostname: str) -> Daemon:
        """The worker whose task instances record ``hostname`` (``worker-<i>.<host>``)."""
        index = int(hostname.split(".", 1)[0].removeprefix("worker-"))
        return self.daemons[f"celery-worker-{index}"]

    # -- lifecycle

    def start(self, timeout: float = 300) -> "AirflowCluster":
        """PostgreSQL, Redis, the migrated metadata, the admin password, then every Airflow daemon, each
        waited for in turn (a daemon already running is kept). Idempotent."""
        self.postgres.start()
        self.redis.start()
        init_db(self.settings, self.dags_folder)
        ensure_admin_password(self.settings)
        for daemon in self.daemons.values():
            daemon.start()
        for daemon in self.daemons.values():
            daemon.wait_ready(timeout)
        return self

    def stop(self, grace: float = 30) -> None:
        """Workers first (a warm shutdown lets a running task end within ``grace``), then the services,
        Redis and PostgreSQL."""
        for daemon in [*self.workers, *reversed(list(self.service_daemons().values()))]:
            daemon.stop(grace)
        self.redis.stop()
        self.postgres.stop()

    def kill_worker(self, worker: Daemon) -> list[int]:
        """A lost worker machine: SIGKILL the worker's process by its pid, then what is left of its process
        group (the pool child running the task's supervisor, the task and its Spark JVM: each daemon is
        its own session, so the group id is the daemon's pid). The pids that were alive and killed."""
        pid = worker.pid()
        if pid is None:
            raise DaemonError(f"{worker.name} is not running")
        members = [p for p in _group_members(pid) if p != pid]
        worker.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        return [pid, *members]

    # -- probes and status

    def _health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.api.url}/api/v2/monitor/health", timeout=5) as resp:
                return json.loads(resp.read().decode()) if resp.status == 200 else None
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def _api_healthy(self) -> bool:
        return self._health() is not None

    def _component_healthy(self, component: str) -> bool:
        health = self._health() or {}
        return (health.get(component) or {}).get("status") == "healthy"

    def ping_workers(self, timeout: float = 2.0) -> list[str]:
        """The Celery node names that answer a ``ping`` broadcast over Redis (remote control)."""
        from celery import Celery

        app = Celery("readiness-cluster-probe", broker=self.redis.url().reveal())
        try:
            replies = app.control.ping(timeout=timeout) or []
        except Exception:  # noqa: BLE001 - the broker not reachable yet: nobody answered
            return []
        finally:
            app.close()
        return sorted(name for reply in replies for name in reply)

    def status(self) -> dict[str, Any]:
        """What runs: each daemon's pid (None: not running), PostgreSQL's and Redis's, the components'
        health as the API server reports it and the Celery workers that answer a ping."""
        health = self._health()
        return {
            "postgres": {"pid": self.postgres.pid(), "port": self.postgres.port,
                         "url": masked_db_url(metadata_db_url(self.settings))},
            "redis": {"pid": self.redis.daemon.pid(), "port": self.redis.port},
            "daemons": {name: {"pid": d.pid(), "log": str(d.log)} for name, d in self.daemons.items()},
            "health": {k: (v or {}).get("status") for k, v in health.items()} if health else None,
            "celery_workers": self.ping_workers() if self.redis.daemon.running() else [],
            "url": self.api.url,
            "password_file": str(password_file(self.settings)),
        }


def _group_members(pgid: int) -> list[int]:
    """The pids in process group ``pgid`` (from /proc; for the report of what a kill ended)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and pid_alive(int(entry.name)):
            members.append(int(entry.name))
    return members
