"""The long-running Airflow services: :class:`AirflowServices` (api-server, scheduler and
dag-processor as child process groups, driven through the REST API) and :func:`run_ui`, the
``ui`` command that keeps them running until Ctrl-C."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import TextIO

from readiness.dev.airflow.env import (
    ADMIN_USER,
    DEFAULT_UI_PORT,
    airflow_cmd,
    airflow_env,
    masked_db_url,
    metadata_db_url,
    password_file,
)
from readiness.dev.airflow.migrate import ensure_admin_password, init_db
from readiness.dev.airflow.processes import last_lines, stop_groups, wait_http
from readiness.dev.airflow.rest import AirflowApi
from readiness.dev.airflow.results import AirflowLocalError
from readiness.settings import Settings

SERVICES = ("api-server", "scheduler", "dag-processor")


class AirflowServices(AirflowApi):
    """api-server, scheduler and dag-processor for ``settings``, as child process groups.

    The real scheduler and LocalExecutor run the tasks (each in a Task SDK worker that talks to
    the API server's execution API). Used by ``ui`` and by tests that drive DAGs end to end::

        with AirflowServices(settings, port=free_port()) as airflow:
            airflow.wait_for_dags(["readiness_reprocess"])
            run_id = airflow.trigger("readiness_reprocess", {"period_id": "2026Q3"})
            result = airflow.wait_for_run("readiness_reprocess", run_id, timeout=600)

    Each service logs to ``<airflow_home>/logs/services/<service>.log``; the REST API is called
    with a JWT from the simple auth manager's ``/auth/token`` (user ``admin``).
    """

    def __init__(self, settings: Settings, port: int = DEFAULT_UI_PORT, dags_folder: Path | str | None = None,
                 host: str = "127.0.0.1", log_level: str = "INFO", log_server_port: int | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        super().__init__(settings, port)
        self.host = host
        self.dags_folder = dags_folder
        self.env = airflow_env(settings, dags_folder, log_level=log_level, port=port)
        if log_server_port is not None:  # the scheduler serves task logs (default 8793)
            self.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(log_server_port)
        self.env.update(extra_env or {})
        self.log_dir = settings.airflow_home / "logs" / "services"
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, TextIO] = {}

    # -- lifecycle

    def start(self, timeout: float = 180) -> "AirflowServices":
        init_db(self.settings, self.dags_folder)
        ensure_admin_password(self.settings)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        commands = {
            "api-server": airflow_cmd("api-server", "--port", str(self.port), "--host", self.host),
            "scheduler": airflow_cmd("scheduler"),
            "dag-processor": airflow_cmd("dag-processor"),
        }
        for name, cmd in commands.items():
            self._logs[name] = open(self.log_dir / f"{name}.log", "a")
            self.procs[name] = subprocess.Popen(
                cmd, env=self.env, cwd=self.settings.airflow_home, stdout=self._logs[name],
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        if not wait_http(f"{self.url}/api/v2/monitor/health", self.procs, timeout=timeout):
            dead = self.exited()
            self.stop()
            what = f"{', '.join(dead)} exited" if dead else f"api-server not healthy after {timeout:.0f}s"
            raise AirflowLocalError(f"Airflow services did not start ({what}):\n" + self.log_tail())
        return self

    def exited(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM each service's process group, SIGKILL what is left after ``timeout``."""
        # Task workers (LocalExecutor children) are in the scheduler's group: they go with it.
        stop_groups(self.procs.values(), timeout)
        for fh in self._logs.values():
            fh.close()
        self._logs.clear()

    def __enter__(self) -> "AirflowServices":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for name in self.procs:
            path = self.log_dir / f"{name}.log"
            if path.exists():
                parts.append(f"--- {name}.log\n" + last_lines(path.read_text(errors="replace"), lines))
        return "\n".join(parts)


def run_ui(
    settings: Settings,
    port: int = DEFAULT_UI_PORT,
    dags_folder: Path | str | None = None,
    host: str = "127.0.0.1",
) -> int:
    """Start api-server, scheduler and dag-processor against the metadata DB until Ctrl-C.

    Each service is a separate process group (so the terminal's Ctrl-C reaches only this
    process, which then stops them in order) logging to ``<airflow_home>/logs/services/``.
    The LocalExecutor runs the tasks; the scheduler also serves task logs on port 8793.
    """
    db = masked_db_url(metadata_db_url(settings))
    print(f"Airflow home: {settings.airflow_home}\nMetadata DB: {db}  (migrating...)", flush=True)
    services = AirflowServices(settings, port, dags_folder, host)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        try:
            services.start(timeout=120)
        except AirflowLocalError as exc:
            print(exc, flush=True)
            return 1
        print(
            f"\nAirflow UI: {services.url}\n"
            f"  username: {ADMIN_USER}\n"
            f"  password: in {password_file(settings)}  (JSON {{\"{ADMIN_USER}\": \"<password>\"}})\n"
            f"  metadata DB: {db}\n"
            f"  service logs: {services.log_dir}/<service>.log\n"
            "Ctrl-C stops api-server, scheduler and dag-processor.\n",
            flush=True,
        )
        while not stopping:
            dead = services.exited()
            if dead:
                name = dead[0]
                print(f"{name} exited with {services.procs[name].returncode}; see {services.log_dir / (name + '.log')}:")
                print(last_lines((services.log_dir / f"{name}.log").read_text(errors="replace"), 30))
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping Airflow services...", flush=True)
        services.stop()
    return 0
