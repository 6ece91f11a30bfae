"""Run Airflow locally from the project, with nothing for the user to configure.

Everything Airflow needs lives under ``settings.airflow_home`` (``<var_dir>/airflow``): the
``airflow.cfg`` Airflow writes on first start, the SQLite metadata database, logs and the
generated UI password. The DAGs folder is the project's ``dags/``.

Metadata database: SQLite under ``AIRFLOW_HOME`` unless ``READINESS_AIRFLOW_DB_URL`` (or a
non-SQLite ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``) names another one, e.g. PostgreSQL:
``postgresql+psycopg2://airflow:<password>@localhost:5432/airflow`` (the driver is installed).
See :func:`metadata_db_url`.

Python API::

    from readiness.dev.airflow_local import airflow_env, init_db, run_dag
    result = run_dag(settings, "readiness_period_pipeline", {"period_id": "2025Q3"}, timeout=1800)
    result.state, result.task_states, result.xcom

Command line::

    python -m readiness.dev.airflow_local run-dag readiness_period_pipeline --conf '{"period_id": "2025Q3"}'
    python -m readiness.dev.airflow_local ui          # api-server + scheduler + dag-processor
    python -m readiness.dev.airflow_local db-url      # which metadata database (password masked)
    python -m readiness.dev.airflow_local init-db
    python -m readiness.dev.airflow_local env         # print the environment (for `airflow ...` by hand)

How a DAG is run (``run_dag``): a fresh Python subprocess (this module's hidden
``_run-dag-worker`` command) with the environment of :func:`airflow_env` parses the DAGs
folder, records the DAGs in the metadata database (so the run is visible in the UI later)
and calls ``DAG.test(run_conf=...)``. That is the code path of ``airflow dags test``: a real
DagRun and TaskInstances in the metadata database, scheduled by the real dependency and
trigger-rule logic, each task run by the Task SDK supervisor in process, XComs stored,
Params validated; without the scheduler, executor or API server. The subprocess writes the
final run and task states and the ``return_value`` XComs to a JSON file, which is more
dependable than parsing ``airflow dags test`` output (that command prints neither the run id
nor the task states and only exits 1 on failure).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from readiness.settings import PROJECT_ROOT, Settings, env_name, load_settings, settings_env

DAGS_FOLDER = PROJECT_ROOT / "dags"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
ADMIN_USER = "admin"
DEFAULT_UI_PORT = 8080
LOG_TAIL_LINES = 80


class AirflowLocalError(RuntimeError):
    """An Airflow command run from here failed; the message ends with the tail of its log."""


class DagRunFailed(AirflowLocalError):
    """A DAG run did not succeed. ``result`` holds the states, when the run got that far."""

    def __init__(self, message: str, result: DagRunResult | None = None):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    run_id: str
    state: str  # final DagRun state: "success" or "failed"
    task_states: dict[str, str]  # task_id -> final TaskInstance state
    xcom: dict[str, Any] = field(default_factory=dict)  # task_id -> return value
    log_file: Path | None = None
    duration_s: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


# --------------------------------------------------------------------------------------------
# Environment


def password_file(settings: Settings) -> Path:
    """Where the UI password of the ``admin`` user is kept (JSON ``{"admin": "<password>"}``)."""
    return settings.airflow_home / "simple_auth_manager_passwords.json.generated"


def database_path(settings: Settings) -> Path:
    return settings.airflow_home / "airflow.db"


DB_URL_ENV = env_name("airflow_db_url")
AIRFLOW_DB_ENV = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"


def metadata_db_url(settings: Settings, environ: dict[str, str] | None = None) -> str:
    """The SQLAlchemy URL of the Airflow metadata database for ``settings``.

    1. ``READINESS_AIRFLOW_DB_URL`` if set, e.g.
       ``postgresql+psycopg2://airflow:<password>@localhost:5432/airflow``;
    2. else ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` if set and not SQLite (the docker/ deployment
       sets it). An inherited SQLite URL is ignored: it would point at another environment's
       ``AIRFLOW_HOME`` (e.g. after ``eval $(python -m readiness.dev.airflow_local env)``);
    3. else SQLite at ``<airflow_home>/airflow.db`` (one machine; the LocalExecutor's tasks reach
       it only through the API server).

    The URL carries the password, so it comes from the environment only, never from code.
    """
    url = (settings.airflow_db_url.reveal() if environ is None else environ.get(DB_URL_ENV, "")).strip()
    environ = os.environ if environ is None else environ
    if url:
        return url
    inherited = environ.get(AIRFLOW_DB_ENV, "").strip()
    if inherited and not inherited.startswith("sqlite"):
        return inherited
    # SQLite needs an absolute path: sqlite:////abs/path/airflow.db
    return f"sqlite:///{Path(settings.airflow_home).resolve() / 'airflow.db'}"


def check_db_driver(url: str, environ: dict[str, str] | None = None) -> None:
    """Raise :class:`AirflowLocalError` early when the URL's drivers are not installed.

    Airflow 3.1 opens the metadata database twice: with the URL's (sync) driver and with an async
    engine whose URL it derives (``postgresql+asyncpg://``) unless
    ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC`` says otherwise. PostgreSQL thus needs
    ``psycopg2`` and ``asyncpg``.
    """
    import importlib.util

    environ = os.environ if environ is None else environ
    if not url.startswith("postgresql"):
        return
    needed = ["psycopg2"] if "+psycopg2" in url or "+" not in url.split("://")[0] else []
    if not environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"):
        needed.append("asyncpg")
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise AirflowLocalError(
            f"the PostgreSQL metadata database needs the Python package(s) {', '.join(missing)}, which are not "
            "installed (Airflow 3.1 derives its async engine as postgresql+asyncpg://); add them to the "
            "project's dependencies (e.g. asyncpg>=0.30) or set AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC")


def masked_db_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for printing)."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def readiness_env(settings: Settings) -> dict[str, str]:
    """``READINESS_*`` variables from which ``load_settings()`` in a task rebuilds ``settings``
    (tasks call ``load_settings()`` in the Airflow process)."""
    return settings_env(settings)


def airflow_env(
    settings: Settings,
    dags_folder: Path | str | None = None,
    *,
    log_level: str = "WARNING",
    port: int = DEFAULT_UI_PORT,
) -> dict[str, str]:
    """The complete environment for an Airflow process of this project.

    ``os.environ`` plus the Airflow configuration (``AIRFLOW_HOME`` and ``AIRFLOW__*`` variables,
    which take precedence over ``airflow.cfg``) plus the ``READINESS_*`` variables of ``settings``.
    ``dags_folder`` defaults to the project's ``dags/``.
    """
    home = Path(settings.airflow_home).resolve()
    dags = Path(dags_folder).resolve() if dags_folder is not None else DAGS_FOLDER
    env = dict(os.environ)
    env.update(readiness_env(settings))
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            # SQLite under AIRFLOW_HOME, or PostgreSQL from READINESS_AIRFLOW_DB_URL (metadata_db_url).
            AIRFLOW_DB_ENV: metadata_db_url(settings),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            # Simple auth manager, one admin user; its password lives in a generated file.
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file(settings).resolve()),
            # The execution API (task workers -> api-server) is reached through the base url.
            "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
            "AIRFLOW__API__PORT": str(port),
            # One API worker is plenty for one developer and the task workers' execution API.
            "AIRFLOW__API__WORKERS": os.environ.get("AIRFLOW__API__WORKERS", "1"),
            "AIRFLOW__API__EXPOSE_CONFIG": "non-sensitive-only",
            # Pick up new DAG files within 30 s instead of 5 min.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            # Quiet: Airflow's own INFO logs (and alembic's plugin chatter) are not shown.
            "AIRFLOW__LOGGING__LOGGING_LEVEL": log_level,
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
        }
    )
    # Silence the DeprecatedImportWarning (a FutureWarning) the bundled compat provider emits
    # on every Airflow start: "The `airflow.operators.branch.BaseBranchOperator` attribute ...".
    quiet = "ignore:The `airflow.:FutureWarning"
    env["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet]))
    return env


def _airflow_cmd(*args: str) -> list[str]:
    """``airflow <args>`` with this interpreter, whatever PATH says."""
    return [sys.executable, "-m", "airflow", *args]


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --------------------------------------------------------------------------------------------
# Metadata database


def init_db(settings: Settings, dags_folder: Path | str | None = None, timeout: float = 600) -> float:
    """Create or upgrade the metadata database (``airflow db migrate``; idempotent).

    Serialised with a file lock so concurrent callers do not migrate the same file at once.
    Returns the seconds taken.
    """
    home = settings.airflow_home
    home.mkdir(parents=True, exist_ok=True)
    check_db_driver(metadata_db_url(settings))
    start = time.monotonic()
    with _migrate_lock(home):
        proc = subprocess.run(
            _airflow_cmd("db", "migrate"),
            env=airflow_env(settings, dags_folder),
            cwd=home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if proc.returncode != 0:
        raise AirflowLocalError(
            f"`airflow db migrate` failed (exit {proc.returncode}) for {home}:\n"
            + _tail(proc.stdout + proc.stderr)
        )
    return time.monotonic() - start


@contextlib.contextmanager
def _migrate_lock(airflow_home: Path):
    """Serialise migrations of one SQLite file between processes."""
    with open(Path(airflow_home) / ".db-migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_admin_password(settings: Settings) -> str:
    """The UI password of ``admin``, generated into :func:`password_file` on first use."""
    path = password_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        content = fh.read().strip()
        passwords = json.loads(content) if content else {}
        if ADMIN_USER not in passwords:
            passwords[ADMIN_USER] = secrets.token_urlsafe(12)
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(passwords) + "\n")
        fcntl.flock(fh, fcntl.LOCK_UN)
    path.chmod(0o600)
    return passwords[ADMIN_USER]


# --------------------------------------------------------------------------------------------
# Running a DAG


def run_dag(
    settings: Settings,
    dag_id: str,
    conf: dict[str, Any] | None = None,
    timeout: float = 3600,
    *,
    dags_folder: Path | str | None = None,
    retries: int | None = None,
    echo: bool = False,
    log_level: str = "WARNING",
) -> DagRunResult:
    """Run ``dag_id`` once, end to end, through real Airflow in a subprocess; wait for the end.

    Creates or migrates the metadata database first (idempotent, like :func:`init_db`). ``conf`` becomes the DagRun conf and
    is validated against the DAG's Params. ``retries`` overrides every task's retries
    (``0`` = fail fast; ``None`` keeps the DAG's policy, whose retry delays make a failing
    run wait for them). ``echo`` streams the Airflow output to stderr as it comes;
    ``log_level`` is Airflow's (``INFO`` shows the tasks' log records too, ``WARNING`` only
    warnings, errors and what tasks print).

    Returns the final run state, per-task states and return-value XComs. Raises
    :class:`DagRunFailed` (message: failed task ids and the tail of the log) if the run did
    not succeed, the DAG could not be loaded, or ``timeout`` seconds passed (the process
    group is killed).
    """
    start = time.monotonic()
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    log_dir = settings.airflow_home / "logs" / "run_dag" / dag_id
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    log_file = log_dir / f"{stamp}.log"
    result_file = log_dir / f"{stamp}.result.json"
    cmd = [
        sys.executable,
        "-m",
        "readiness.dev.airflow_local",
        "_run-dag-worker",
        dag_id,
        "--conf",
        json.dumps(conf or {}),
        "--result-file",
        str(result_file),
    ]
    if retries is not None:
        cmd += ["--retries", str(retries)]

    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    timed_out = False
    with open(log_file, "w") as log:
        proc = subprocess.Popen(
            cmd,
            env=airflow_env(settings, dags_folder, log_level=log_level),
            cwd=settings.airflow_home,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,  # own process group: a timeout kills Spark's JVM too
        )
        reader = threading.Thread(target=_pump, args=(proc.stdout, log, tail, echo), daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
        reader.join(timeout=10)

    duration = time.monotonic() - start
    log_tail = "\n".join(tail)
    if timed_out:
        raise DagRunFailed(
            f"DAG {dag_id!r} did not finish within {timeout:.0f}s; killed. Log: {log_file}\n"
            f"--- log tail ---\n{log_tail}"
        )
    if not result_file.exists():
        raise DagRunFailed(
            f"DAG {dag_id!r} could not be run (exit {proc.returncode}). Log: {log_file}\n"
            f"--- log tail ---\n{log_tail}"
        )
    data = json.loads(result_file.read_text())
    result_file.unlink()
    if data.get("error"):
        raise DagRunFailed(
            f"DAG {dag_id!r} could not be run: {data['error']}\nLog: {log_file}\n"
            f"--- log tail ---\n{log_tail}"
        )
    result = DagRunResult(
        dag_id=dag_id,
        run_id=data["run_id"],
        state=data["state"],
        task_states=data["task_states"],
        xcom=data.get("xcom", {}),
        log_file=log_file,
        duration_s=duration,
    )
    if not result.succeeded:
        not_ok = {t: s for t, s in result.task_states.items() if s != "success"}
        raise DagRunFailed(
            f"DAG run {dag_id}/{result.run_id} ended {result.state!r}; tasks not successful: "
            + ", ".join(f"{t} ({s})" for t, s in not_ok.items())
            + f"\nLog: {log_file}\n--- log tail ---\n{log_tail}",
            result,
        )
    return result


def _pump(stream: TextIO, log: TextIO, tail: deque[str], echo: bool) -> None:
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


def _kill_group(proc: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM the process group of ``proc``, SIGKILL it if still alive after ``grace`` s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _run_dag_worker(dag_id: str, conf: dict[str, Any], result_file: Path, retries: int | None) -> int:
    """Inside the Airflow environment: parse, sync to the DB, ``DAG.test``, write the result."""

    def write(data: dict[str, Any]) -> None:
        tmp = result_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, default=str, indent=2))
        tmp.replace(result_file)

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.db import upgradedb
    from airflow.utils.session import create_session
    from sqlalchemy import select

    # What `airflow db migrate` does (a no-op at head), without starting another interpreter.
    with _migrate_lock(Path(os.environ["AIRFLOW_HOME"])):
        upgradedb()

    # As `airflow dags test` does: register the bundles, parse them and record what was found.
    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    dag = None
    import_errors: dict[str, str] = {}
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path)
        sync_bag_to_db(bag, bundle.name, bundle.get_current_version())
        import_errors.update(bag.import_errors)
        if dag_id in bag.dags:
            dag = bag.dags[dag_id]
            break
    if dag is None:
        errors = "".join(f"\n{path}:\n{err}" for path, err in import_errors.items())
        write({"error": f"DAG {dag_id!r} not found in the DAGs folder.{errors}"})
        return 2
    if retries is not None:
        for task in dag.tasks:
            task.retries = retries

    try:
        dr = dag.test(run_conf=conf)
    except Exception as exc:  # e.g. the conf does not satisfy the DAG's Params
        write({"error": f"{type(exc).__name__}: {exc}"})
        raise
    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == dr.run_id)
        ).all()
        task_states = {
            ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": str(ti.state)
            for ti in tis
        }
        xcoms = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == dr.run_id,
                XComModel.key == "return_value",
                XComModel.map_index < 0,
            )
        ).all()
        xcom = {x.task_id: XComModel.deserialize_value(x) for x in xcoms}
        state = str(dr.state)
    write({"dag_id": dag_id, "run_id": dr.run_id, "state": state, "task_states": task_states, "xcom": xcom})
    return 0 if state == "success" else 1


# --------------------------------------------------------------------------------------------
# UI and services


SERVICES = ("api-server", "scheduler", "dag-processor")


class AirflowServices:
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
        self.settings = settings
        self.port = port
        self.host = host
        self.dags_folder = dags_folder
        self.env = airflow_env(settings, dags_folder, log_level=log_level, port=port)
        if log_server_port is not None:  # the scheduler serves task logs (default 8793)
            self.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(log_server_port)
        self.env.update(extra_env or {})
        self.log_dir = settings.airflow_home / "logs" / "services"
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, TextIO] = {}
        self._token: str | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    # -- lifecycle

    def start(self, timeout: float = 180) -> "AirflowServices":
        init_db(self.settings, self.dags_folder)
        ensure_admin_password(self.settings)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        commands = {
            "api-server": _airflow_cmd("api-server", "--port", str(self.port), "--host", self.host),
            "scheduler": _airflow_cmd("scheduler"),
            "dag-processor": _airflow_cmd("dag-processor"),
        }
        for name, cmd in commands.items():
            self._logs[name] = open(self.log_dir / f"{name}.log", "a")
            self.procs[name] = subprocess.Popen(
                cmd, env=self.env, cwd=self.settings.airflow_home, stdout=self._logs[name],
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        if not _wait_http(f"{self.url}/api/v2/monitor/health", self.procs, timeout=timeout):
            dead = self.exited()
            self.stop()
            what = f"{', '.join(dead)} exited" if dead else f"api-server not healthy after {timeout:.0f}s"
            raise AirflowLocalError(f"Airflow services did not start ({what}):\n" + self.log_tail())
        return self

    def exited(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM each service's process group, SIGKILL what is left after ``timeout``."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            # Task workers (LocalExecutor children) are in the scheduler's group; make sure none is left.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
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
                parts.append(f"--- {name}.log\n" + _tail(path.read_text(errors="replace"), lines))
        return "\n".join(parts)

    # -- REST API

    def token(self) -> str:
        if self._token is None:
            body = {"username": ADMIN_USER, "password": ensure_admin_password(self.settings)}
            self._token = self._request("POST", "/auth/token", body, auth=False)["access_token"]
        return self._token

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        import urllib.request

        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call ``/api/v2<path>``; raises ``urllib.error.HTTPError`` on 4xx/5xx."""
        import urllib.error

        try:
            return self._request(method, f"/api/v2{path}", body)
        except urllib.error.HTTPError as exc:
            if exc.code == 401 and self._token is not None:  # token expired: once more with a new one
                self._token = None
                return self._request(method, f"/api/v2{path}", body)
            raise

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180) -> None:
        """Until the dag-processor has serialised every one of ``dag_ids``."""
        import urllib.error

        deadline = time.monotonic() + timeout
        missing = list(dag_ids)
        while missing:
            for dag_id in list(missing):
                try:
                    self.api("GET", f"/dags/{dag_id}/details")
                    missing.remove(dag_id)
                except urllib.error.HTTPError as exc:
                    if exc.code != 404:
                        raise
            if missing:
                if time.monotonic() > deadline or self.exited():
                    raise AirflowLocalError(f"DAGs not loaded after {timeout:.0f}s: {missing}\n" + self.log_tail())
                time.sleep(2)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a run now (``logical_date`` null, as the UI does); returns its run id."""
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def pause(self, dag_id: str, paused: bool = True) -> None:
        """Pause (or unpause) a DAG: no new scheduled runs; queued runs wait."""
        self.api("PATCH", f"/dags/{dag_id}?update_mask=is_paused", {"is_paused": paused})

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns?order_by=-run_after&limit=100")["dag_runs"]

    @staticmethod
    def run_path(dag_id: str, run_id: str) -> str:
        """The REST path of one DAG run (run ids hold ``:`` and ``+``, so they are quoted)."""
        import urllib.parse

        return f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One DAG run as the REST API describes it (state, run_after, start_date, end_date, ...)."""
        return self.api("GET", self.run_path(dag_id, run_id))

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """``task_id`` (``task_id[map_index]`` for mapped ones) -> state."""
        tis = self.api("GET", f"{self.run_path(dag_id, run_id)}/taskInstances?limit=1000")
        return {ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]": str(ti["state"])
                for ti in tis["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        import urllib.error

        try:
            entry = self.api("GET", f"{self.run_path(dag_id, run_id)}/taskInstances/{task_id}/xcomEntries/"
                                    f"return_value?map_index={map_index}&deserialize=true&stringify=false")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        value = entry.get("value")
        if isinstance(value, str):  # some Airflow versions return the stored JSON text
            with contextlib.suppress(ValueError):
                return json.loads(value)
        return value

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 1800, poll: float = 3) -> DagRunResult:
        """Until the run ends; its states and return-value XComs (mapped tasks: ``task[i]``)."""
        start = time.monotonic()
        while True:
            state = self.run(dag_id, run_id)["state"]
            if state in ("success", "failed"):
                break
            if time.monotonic() - start > timeout or self.exited():
                raise DagRunFailed(f"{dag_id} run {run_id} still {state} after {time.monotonic() - start:.0f}s "
                                   f"(services exited: {self.exited()}); tasks: "
                                   f"{self.task_states(dag_id, run_id)}\n" + self.log_tail())
            time.sleep(poll)
        states = self.task_states(dag_id, run_id)
        xcom = {}
        for key in states:
            task_id, _, index = key.partition("[")
            value = self.xcom(dag_id, run_id, task_id, int(index[:-1]) if index else -1)
            if value is not None:
                xcom[key] = value
        return DagRunResult(dag_id, run_id, state, states, xcom, duration_s=time.monotonic() - start)


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
                print(_tail((services.log_dir / f"{name}.log").read_text(errors="replace"), 30))
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping Airflow services...", flush=True)
        services.stop()
    return 0


def _wait_http(url: str, procs: dict[str, subprocess.Popen], timeout: float) -> bool:
    import urllib.error
    import urllib.request

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


# --------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m readiness.dev.airflow_local", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p_run = sub.add_parser("run-dag", help="run one DAG end to end through Airflow and wait for it")
    p_run.add_argument("dag_id")
    p_run.add_argument("--conf", default="{}", help="DagRun conf as JSON, e.g. '{\"period_id\": \"2025Q3\"}'")
    p_run.add_argument("--timeout", type=float, default=3600)
    p_run.add_argument("--retries", type=int, default=None, help="override task retries (0: fail fast)")
    p_run.add_argument("--quiet", action="store_true", help="do not stream the Airflow output")
    p_run.add_argument("--verbose", action="store_true", help="Airflow log level INFO (default WARNING)")
    p_run.add_argument("--dags-folder", type=Path, default=None, help=f"default: {DAGS_FOLDER}")

    p_ui = sub.add_parser("ui", help="start api-server, scheduler and dag-processor; Ctrl-C stops them")
    p_ui.add_argument("--port", type=int, default=DEFAULT_UI_PORT)
    p_ui.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to reach the UI from other hosts")
    p_ui.add_argument("--dags-folder", type=Path, default=None, help=f"default: {DAGS_FOLDER}")

    sub.add_parser("init-db", help="create or upgrade the metadata database")
    sub.add_parser("db-url", help="print the metadata database URL (password masked)")
    sub.add_parser("env", help="print the Airflow environment as shell exports")

    p_worker = sub.add_parser("_run-dag-worker")  # internal: the subprocess of run_dag
    p_worker.add_argument("dag_id")
    p_worker.add_argument("--conf", default="{}")
    p_worker.add_argument("--result-file", required=True, type=Path)
    p_worker.add_argument("--retries", type=int, default=None)

    args = parser.parse_args(argv)
    if args.command == "_run-dag-worker":
        return _run_dag_worker(args.dag_id, json.loads(args.conf), args.result_file, args.retries)

    settings = load_settings()
    if args.command == "run-dag":
        try:
            conf = json.loads(args.conf)
        except json.JSONDecodeError as exc:
            parser.error(f"--conf is not valid JSON: {exc}")
        try:
            result = run_dag(
                settings,
                args.dag_id,
                conf,
                args.timeout,
                dags_folder=args.dags_folder,
                retries=args.retries,
                echo=not args.quiet,
                log_level="INFO" if args.verbose else "WARNING",
            )
        except DagRunFailed as exc:
            print(f"\nFAILED: {exc}", file=sys.stderr)
            return 1
        if args.quiet:
            print(f"run {result.run_id}: {result.state} in {result.duration_s:.0f}s (log: {result.log_file})")
            for task_id, state in result.task_states.items():
                print(f"  {task_id:16} {state:8} {json.dumps(result.xcom.get(task_id), default=str)}")
        else:
            print(json.dumps(dataclasses.asdict(result), default=str, indent=2))
        return 0
    if args.command == "ui":
        return run_ui(settings, port=args.port, dags_folder=args.dags_folder, host=args.host)
    if args.command == "init-db":
        print(f"metadata DB ready at {masked_db_url(metadata_db_url(settings))} ({init_db(settings):.1f}s)")
        return 0
    if args.command == "db-url":
        print(masked_db_url(metadata_db_url(settings)))
        return 0
    if args.command == "env":
        # Only Airflow's variables: exporting every READINESS_* would pin the settings in the shell.
        for key, value in sorted(airflow_env(settings).items()):
            if key.startswith("AIRFLOW") or key == "PYTHONWARNINGS":
                print(f"export {key}={shlex.quote(value)}")
        return 0
    return 2



if __name__ == "__main__":
    sys.exit(main())
