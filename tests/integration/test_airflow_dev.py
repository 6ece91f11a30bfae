"""readiness.dev.airflow: the environment, and run_dag driving real Airflow end to end."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from readiness.dev.airflow import (
    DAGS_FOLDER,
    DagRunFailed,
    airflow_env,
    init_db,
    masked_db_url,
    metadata_db_url,
    run_dag,
)
from readiness.settings import PROJECT_ROOT, load_settings


@pytest.fixture(autouse=True)
def _project_sqlite(monkeypatch):
    """These tests use the SQLite database of their own AIRFLOW_HOME, whatever the shell exports."""
    monkeypatch.delenv("READINESS_AIRFLOW_DB_URL", raising=False)
    monkeypatch.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", raising=False)

TWO_STEP_DAG = '''
from datetime import timedelta
from pathlib import Path

from airflow.sdk import DAG, task


@task
def write_first(out_dir: str) -> str:
    path = Path(out_dir) / "first.txt"
    path.write_text("readiness")
    return str(path)


@task
def read_and_write_second(first: str, out_dir: str) -> dict:
    text = Path(first).read_text()
    (Path(out_dir) / "second.txt").write_text(text.upper())
    return {"chars": len(text)}


with DAG(
    "two_step",
    schedule=None,
    catchup=False,
    default_args={"retries": 0},
    params={"out_dir": "/nonexistent"},
):
    read_and_write_second(write_first("{{ params.out_dir }}"), "{{ params.out_dir }}")


@task
def explode():
    raise ValueError("deliberate failure in explode")


@task
def never_runs():
    raise RuntimeError("never_runs ran although its upstream task failed")


with DAG("failing", schedule=None, catchup=False, default_args={"retries": 0}):
    explode() >> never_runs()


with DAG(
    "failing_with_retries",
    schedule=None,
    catchup=False,
    default_args={"retries": 3, "retry_delay": timedelta(minutes=10)},
):
    explode()
'''


def test_airflow_env_points_at_the_project(tmp_path):
    settings = load_settings(var_dir=tmp_path / "var", kafka_bootstrap="127.0.0.1:29092")
    env = airflow_env(settings)
    home = (tmp_path / "var" / "airflow").resolve()
    assert env["AIRFLOW_HOME"] == str(home)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(PROJECT_ROOT / "dags") == str(DAGS_FOLDER)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home}/airflow.db"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite:////")  # absolute
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__UNIT_TEST_MODE"] == "False"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith(str(home))
    assert airflow_env(settings, tmp_path / "dags")["AIRFLOW__CORE__DAGS_FOLDER"] == str(tmp_path / "dags")


def test_metadata_db_url_precedence(tmp_path):
    settings = load_settings(var_dir=tmp_path / "var")
    sqlite = f"sqlite:///{(tmp_path / 'var' / 'airflow').resolve()}/airflow.db"
    pg = "postgresql+psycopg2://airflow:pw@db:5432/airflow"
    assert metadata_db_url(settings, {}) == sqlite
    assert metadata_db_url(settings, {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg}) == pg  # e.g. docker/
    # An inherited SQLite URL belongs to another AIRFLOW_HOME (e.g. `eval $(... env)`): ignored.
    assert metadata_db_url(settings, {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////elsewhere/airflow.db"}) == sqlite
    assert metadata_db_url(settings, {"READINESS_AIRFLOW_DB_URL": pg,
                                      "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://other/db"}) == pg
    assert masked_db_url(pg) == "postgresql+psycopg2://airflow:***@db:5432/airflow"
    assert masked_db_url(sqlite) == sqlite


def test_airflow_env_uses_the_postgresql_url(tmp_path, monkeypatch):
    pg = "postgresql+psycopg2://airflow:pw@127.0.0.1:5432/airflow"
    monkeypatch.setenv("READINESS_AIRFLOW_DB_URL", pg)
    assert airflow_env(load_settings(var_dir=tmp_path))["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == pg


def test_airflow_env_rebuilds_the_same_settings_in_a_task(tmp_path):
    """Tasks call load_settings() in the Airflow process: it must give back these settings."""
    settings = load_settings(var_dir=tmp_path / "var", kafka_bootstrap="127.0.0.1:29092", topic_partitions=3)
    out = subprocess.run(
        [sys.executable, "-c", "from readiness.settings import load_settings; print(repr(load_settings()))"],
        env=airflow_env(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == repr(settings)


@pytest.fixture(scope="module")
def airflow_sandbox(tmp_path_factory):
    """Settings with a temporary var dir (so AIRFLOW_HOME and its SQLite DB) and a DAGs folder."""
    root = tmp_path_factory.mktemp("airflow-local")
    dags = root / "dags"
    dags.mkdir()
    (dags / "test_dags.py").write_text(textwrap.dedent(TWO_STEP_DAG))
    return load_settings(var_dir=root / "var"), dags, root


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_run_dag_runs_both_tasks(airflow_sandbox):
    settings, dags, root = airflow_sandbox
    out_dir = root / "out"
    out_dir.mkdir()

    result = run_dag(settings, "two_step", {"out_dir": str(out_dir)}, timeout=240, dags_folder=dags)

    assert result.state == "success"
    assert result.task_states == {"write_first": "success", "read_and_write_second": "success"}
    assert (out_dir / "first.txt").read_text() == "readiness"
    assert (out_dir / "second.txt").read_text() == "READINESS"
    assert result.xcom == {"write_first": str(out_dir / "first.txt"), "read_and_write_second": {"chars": 9}}
    # A real metadata DB under the sandbox's AIRFLOW_HOME, not ~/airflow.
    assert (settings.airflow_home / "airflow.db").stat().st_size > 0
    assert result.log_file is not None and result.log_file.is_relative_to(settings.airflow_home)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_run_dag_raises_with_the_failed_task(airflow_sandbox):
    settings, dags, _ = airflow_sandbox

    with pytest.raises(DagRunFailed) as excinfo:
        run_dag(settings, "failing", {}, timeout=240, dags_folder=dags)

    message = str(excinfo.value)
    assert "explode" in message
    assert "deliberate failure in explode" in message  # the log tail carries the traceback
    assert excinfo.value.result is not None
    assert excinfo.value.result.task_states == {"explode": "failed", "never_runs": "upstream_failed"}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_run_dag_retries_override_fails_fast(airflow_sandbox):
    """retries=0 overrides a DAG's retry policy (3 retries, 10 min apart) for local runs."""
    settings, dags, _ = airflow_sandbox

    with pytest.raises(DagRunFailed, match="explode"):
        run_dag(settings, "failing_with_retries", {}, timeout=120, dags_folder=dags, retries=0)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_run_dag_rejects_unknown_dag_and_bad_conf(airflow_sandbox):
    settings, dags, _ = airflow_sandbox
    with pytest.raises(DagRunFailed, match="not found"):
        run_dag(settings, "no_such_dag", {}, timeout=120, dags_folder=dags)
    # The project's DAG validates period_id against its Param before anything runs.
    with pytest.raises(DagRunFailed, match="period_id"):
        run_dag(settings, "readiness_period_pipeline", {"period_id": "2025Q5"}, timeout=120)


# --------------------------------------------------------------------------------------------
# PostgreSQL metadata database (the switch for the UI and the docker/ deployment)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A throw-away PostgreSQL (the project's LocalPostgres) on a free loopback port, password auth;
    ``make test`` installs PostgreSQL if missing. Yields the URL with the generated password."""
    from readiness.dev.postgres import LocalPostgres
    from support.ports import free_port

    pg = LocalPostgres(load_settings(var_dir=tmp_path_factory.mktemp("postgres"), postgres_port=free_port()))
    pg.start()
    try:
        yield pg.url().reveal()
    finally:
        pg.remove()


def test_local_postgres_asks_for_the_password(postgres):
    import urllib.parse

    import psycopg2

    url = urllib.parse.urlsplit(postgres)
    where = {"host": url.hostname, "port": url.port, "user": url.username, "dbname": "airflow", "connect_timeout": 5}
    assert url.hostname == "127.0.0.1"
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(password="wrong", **where)
    psycopg2.connect(password=url.password, **where).close()


def test_a_var_dir_made_again_at_the_same_path_gets_a_fresh_postgresql(tmp_path_factory):
    """As root the cluster lives in <tmp> under a hash of var_dir's path: after that var dir is deleted,
    a new one at the same path must not find the old cluster (with the old run's Airflow metadata)."""
    import shutil

    from readiness.dev.postgres import LocalPostgres
    from support.ports import free_port

    var_dir = tmp_path_factory.mktemp("pg-again")
    first = LocalPostgres(load_settings(var_dir=var_dir, postgres_port=free_port()))
    first.start()
    left_behind = first.root / "data" / "left-behind"
    left_behind.write_text("the earlier var dir's cluster")
    shutil.rmtree(var_dir)  # the server still runs, as after a killed run
    var_dir.mkdir()
    again = LocalPostgres(load_settings(var_dir=var_dir, postgres_port=free_port()))
    try:
        again.start()
        assert not left_behind.exists()
        assert again.running() and again._listening_port() == again.port
    finally:
        again.remove()
        first.remove()


def test_celery_executor_environment(tmp_path):
    """The cluster profile's executor: Redis broker and PostgreSQL results with their passwords, one JWT
    key for every process, the execution API on the settings' port, the fast heartbeat timeout."""
    from readiness.dev.airflow.env import RETRY_DELAY_ENV
    from readiness.orchestration.dag_support import RETRY_DELAY_VARIABLE

    settings = load_settings(env="cluster", environ={}, var_dir=tmp_path / "var", airflow_port=28123,
                             redis_port=26399, postgres_port=25499)
    env = airflow_env(settings)
    redis_password = (settings.secrets_dir / "redis.password").read_text().strip()
    pg_password = (settings.secrets_dir / "postgres.password").read_text().strip()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{redis_password}@127.0.0.1:26399/0"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"postgresql+psycopg2://airflow:{pg_password}@127.0.0.1:25499/airflow"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:28123/execution/"
    assert env["AIRFLOW__API__PORT"] == "28123" and env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "1"
    jwt = env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert jwt and airflow_env(settings)["AIRFLOW__API_AUTH__JWT_SECRET"] == jwt  # generated once, then kept
    assert int(env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"]) < 300
    assert RETRY_DELAY_ENV == f"AIRFLOW_VAR_{RETRY_DELAY_VARIABLE.upper()}" and int(env[RETRY_DELAY_ENV]) < 120
    from datetime import timedelta

    from readiness.orchestration.dag_support import configured_retry_delay

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(RETRY_DELAY_ENV, env[RETRY_DELAY_ENV])
        assert configured_retry_delay(timedelta(minutes=2)) == timedelta(seconds=int(env[RETRY_DELAY_ENV]))
        mp.delenv(RETRY_DELAY_ENV)
        assert configured_retry_delay(timedelta(minutes=2)) == timedelta(minutes=2)
    for path in settings.secrets_dir.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
    # The LocalExecutor path knows nothing of Celery.
    local = airflow_env(load_settings(var_dir=tmp_path / "local"))
    assert local["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert not any(k.startswith("AIRFLOW__CELERY__") or k == RETRY_DELAY_ENV for k in local if k not in os.environ)


def test_postgresql_without_its_async_driver_is_refused_with_the_reason(monkeypatch):
    from readiness.dev.airflow import AirflowLocalError, check_db_driver

    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(AirflowLocalError, match="needs the Python package.*asyncpg"):
        check_db_driver("postgresql+psycopg2://airflow:pw@db/airflow", {})
    check_db_driver("sqlite:////tmp/airflow.db", {})  # SQLite: nothing to check


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_postgresql_metadata_database(postgres, airflow_sandbox, tmp_path, monkeypatch):
    """READINESS_AIRFLOW_DB_URL switches the metadata database: migrate, then run a DAG on it."""
    import psycopg2

    _, dags, _ = airflow_sandbox
    settings = load_settings(var_dir=tmp_path / "var")
    monkeypatch.setenv("READINESS_AIRFLOW_DB_URL", postgres)
    start = time.monotonic()
    init_db(settings, dags)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = run_dag(settings, "two_step", {"out_dir": str(out_dir)}, timeout=300, dags_folder=dags)
    print(f"\nPostgreSQL: migrate + one DAG run in {time.monotonic() - start:.0f}s")
    assert result.state == "success"
    assert not (settings.airflow_home / "airflow.db").exists()  # nothing went to SQLite
    conn = psycopg2.connect(postgres.replace("postgresql+psycopg2", "postgresql"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT state FROM dag_run WHERE dag_id = 'two_step' AND run_id = %s", (result.run_id,))
            assert cur.fetchone() == ("success",)
    finally:
        conn.close()
