"""The environment of an Airflow process of this project: where its files live, which metadata
database it uses, and the ``AIRFLOW_*`` and ``READINESS_*`` variables that configure it.

Nothing here starts a process; :func:`airflow_env` is what every Airflow subprocess gets.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import urllib.parse
from pathlib import Path

from readiness.dev.airflow.results import AirflowLocalError
from readiness.ops.secrets import ensure_secret_file
from readiness.settings import PROJECT_ROOT, Secret, Settings, env_name, load_settings, settings_env

DAGS_FOLDER = PROJECT_ROOT / "dags"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
ADMIN_USER = "admin"
DEFAULT_UI_PORT = 8080
DB_URL_ENV = env_name("airflow_db_url")
AIRFLOW_DB_ENV = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
CELERY_EXECUTOR = "CeleryExecutor"
JWT_SECRET_FILE = "airflow-jwt.secret"
# The environment form of the Airflow Variable ``task_retry_delay_seconds`` that
# readiness.orchestration.dag_support reads for the tasks' retry delay (see celery_env).
RETRY_DELAY_ENV = "AIRFLOW_VAR_TASK_RETRY_DELAY_SECONDS"
# The CeleryExecutor's settings for a cluster on one machine (see celery_env for the why).
CLUSTER_TASK_HEARTBEAT_TIMEOUT_S = 30
CLUSTER_HEARTBEAT_DETECTION_INTERVAL_S = 5
CLUSTER_RETRY_DELAY_S = 15


def password_file(settings: Settings) -> Path:
    """Where the UI password of the ``admin`` user is kept (JSON ``{"admin": "<password>"}``)."""
    return settings.airflow_home / "simple_auth_manager_passwords.json.generated"


def database_path(settings: Settings) -> Path:
    return settings.airflow_home / "airflow.db"


def metadata_db_url(settings: Settings, environ: dict[str, str] | None = None) -> str:
    """The SQLAlchemy URL of the Airflow metadata database for ``settings``.

    1. ``READINESS_AIRFLOW_DB_URL`` if set, e.g.
       ``postgresql+psycopg2://airflow:<password>@localhost:5432/airflow``;
    2. else ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` if set and not SQLite (the docker/ deployment
       sets it). An inherited SQLite URL is ignored: it would point at another environment's
       ``AIRFLOW_HOME`` (e.g. after ``eval $(python -m readiness.dev.airflow env)``);
    3. else SQLite at ``<airflow_home>/airflow.db`` (one machine; the LocalExecutor's tasks reach
       it only through the API server).

    When ``settings.postgres_port`` is set (the cluster profile) and no URL is given in 1., the
    PostgreSQL the project starts (:class:`readiness.dev.postgres.LocalPostgres`) comes before 2.

    The URL carries the password, so it comes from the environment only, never from code.
    """
    environ = os.environ if environ is None else environ
    # The settings' URL (an override, or the variable when they were loaded), else the variable as
    # ``environ`` holds it now: it may have been set after the settings were loaded.
    url = (settings.airflow_db_url or load_settings(environ=dict(environ)).airflow_db_url).reveal().strip()
    if url:
        return url
    if settings.postgres_port:
        from readiness.dev.postgres import LocalPostgres

        return LocalPostgres(settings).url().reveal()
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
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def readiness_env(settings: Settings) -> dict[str, str]:
    """``READINESS_*`` variables from which ``load_settings()`` in a task rebuilds ``settings``
    (tasks call ``load_settings()`` in the Airflow process)."""
    return settings_env(settings)


def jwt_secret(settings: Settings) -> Secret:
    """The key the API server signs the task workers' tokens with: the settings' one, else generated
    once into ``<secrets_dir>/airflow-jwt.secret``. Every Airflow process must get the same key, or a
    Celery worker's task fails with "Invalid auth token" at the API server."""
    if settings.airflow_jwt_secret:
        return settings.airflow_jwt_secret
    return Secret(ensure_secret_file(settings.secrets_dir / JWT_SECRET_FILE, nbytes=48))  # 64 characters: HS512 wants 64 bytes


def celery_env(settings: Settings, port: int) -> dict[str, str]:
    """The ``AIRFLOW__*`` variables of the CeleryExecutor on the project's Redis and PostgreSQL.

    Fast recovery from a lost worker: a task whose Celery worker dies (SIGKILL, a lost machine) stops
    heartbeating; the scheduler fails it after ``[scheduler] task_instance_heartbeat_timeout`` (Airflow's
    default 300 s; here 30 s, six of the supervisor's 5 s heartbeats, checked every 5 s) and the DAG
    processor runs its failure handling, so the task goes to ``up_for_retry`` and its next try is queued
    after the retry delay (``task_retry_delay_seconds``: 15 s here instead of the DAGs' 2 min) and taken
    by a worker that is alive. ``task_acks_late`` stays on (Airflow's default, said explicitly): with
    concurrency 1 a busy worker then holds no prefetched message, so a queued task never waits in a
    worker that is busy or about to die. The broker's visibility timeout keeps Airflow's 24 h: a lower
    one would hand a still running task's message to the other worker.
    """
    from readiness.dev.redis import LocalRedis

    return {
        "AIRFLOW__CORE__EXECUTOR": CELERY_EXECUTOR,
        "AIRFLOW__CELERY__BROKER_URL": LocalRedis(settings).url().reveal(),
        # Task states in the metadata database (Celery's SQLAlchemy result backend), not in Redis.
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata_db_url(settings)}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        # The task runs in the worker's own process (which the Task SDK's supervisor forks for the task):
        # Celery's prefork pool children deadlock in kombu's after-fork clean-up of the inherited Redis
        # connection (blocked in BRPOP, the pool never ready; celery 5.6, kombu 5.6, redis-py 6.4).
        "AIRFLOW__CELERY__POOL": "solo",
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
        # Two cores: one process to fetch the Celery states, not cpu_count() - 1.
        "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret(settings).reveal(),
        # The workers reach the API server's execution API directly (not through base_url guessing).
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(CLUSTER_TASK_HEARTBEAT_TIMEOUT_S),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL":
            str(CLUSTER_HEARTBEAT_DETECTION_INTERVAL_S),
        RETRY_DELAY_ENV: str(CLUSTER_RETRY_DELAY_S),
    }


def airflow_env(
    settings: Settings,
    dags_folder: Path | str | None = None,
    *,
    log_level: str = "WARNING",
    port: int | None = None,
) -> dict[str, str]:
    """The complete environment for an Airflow process of this project.

    ``os.environ`` plus the Airflow configuration (``AIRFLOW_HOME`` and ``AIRFLOW__*`` variables,
    which take precedence over ``airflow.cfg``) plus the ``READINESS_*`` variables of ``settings``.
    ``dags_folder`` defaults to the project's ``dags/``; ``port`` (the API server's) to
    ``settings.airflow_port``. ``settings.airflow_executor`` chooses the executor: the LocalExecutor,
    or the CeleryExecutor with :func:`celery_env`.
    """
    port = settings.airflow_port if port is None else port
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
    if settings.airflow_executor == CELERY_EXECUTOR:
        env.update(celery_env(settings, port))
    elif settings.airflow_executor != "LocalExecutor":
        raise AirflowLocalError(f"unsupported airflow_executor {settings.airflow_executor!r} "
                                f"(LocalExecutor or {CELERY_EXECUTOR})")
    quiet = "ignore:The `airflow.:FutureWarning"
    env["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet]))
    return env


def airflow_cmd(*args: str) -> list[str]:
    """``airflow <args>`` with this interpreter, whatever PATH says."""
    return [sys.executable, "-m", "airflow", *args]
