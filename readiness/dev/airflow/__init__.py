"""Run Airflow locally from the project, with nothing for the user to configure.

Everything Airflow needs lives under ``settings.airflow_home`` (``<var_dir>/airflow``): the
``airflow.cfg`` Airflow writes on first start, the SQLite metadata database, logs and the
generated UI password. The DAGs folder is the project's ``dags/``.

Executor: the LocalExecutor, or with ``airflow_executor = "CeleryExecutor"`` (the cluster profile)
the CeleryExecutor on the project's Redis and PostgreSQL (:func:`~readiness.dev.airflow.env.celery_env`;
the processes are started by :class:`readiness.dev.cluster.airflow.AirflowCluster`).

Metadata database: SQLite under ``AIRFLOW_HOME`` unless ``READINESS_AIRFLOW_DB_URL`` (or a
non-SQLite ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``) names another one, e.g. PostgreSQL:
``postgresql+psycopg2://airflow:<password>@localhost:5432/airflow`` (the driver is installed).
See :func:`metadata_db_url`.

Python API::

    from readiness.dev.airflow import airflow_env, init_db, run_dag
    result = run_dag(settings, "readiness_period_pipeline", {"period_id": "2025Q3"}, timeout=1800)
    result.state, result.task_states, result.xcom

Command line::

    python -m readiness.dev.airflow run-dag readiness_period_pipeline --conf '{"period_id": "2025Q3"}'
    python -m readiness.dev.airflow ui          # api-server + scheduler + dag-processor
    python -m readiness.dev.airflow db-url      # which metadata database (password masked)
    python -m readiness.dev.airflow init-db
    python -m readiness.dev.airflow env         # print the environment (for `airflow ...` by hand)

How a DAG is run (``run_dag``): a fresh Python subprocess (this package's hidden
``_run-dag-worker`` command) with the environment of :func:`airflow_env` parses the DAGs
folder, records the DAGs in the metadata database (so the run is visible in the UI later)
and calls ``DAG.test(run_conf=...)``. That is the code path of ``airflow dags test``: a real
DagRun and TaskInstances in the metadata database, scheduled by the real dependency and
trigger-rule logic, each task run by the Task SDK supervisor in process, XComs stored,
Params validated; without the scheduler, executor or API server. The subprocess writes the
final run and task states and the ``return_value`` XComs to a JSON file, which is more
dependable than parsing ``airflow dags test`` output (that command prints neither the run id
nor the task states and only exits 1 on failure).

Modules: ``env`` (paths, metadata database URL, the environment of an Airflow process),
``migrate`` (``airflow db migrate`` under a lock, the ``admin`` password), ``processes``
(output pump, process-group stop, HTTP wait), ``results`` (``DagRunResult`` and the errors),
``dag_run`` (``run_dag`` and its worker), ``rest`` (REST API client), ``services``
(``AirflowServices``, ``ui``) and ``cli`` (the command line).
"""
from readiness.dev.airflow.dag_run import run_dag
from readiness.dev.airflow.env import (
                                       ADMIN_USER,
                                       AIRFLOW_DB_ENV,
                                       DAGS_FOLDER,
                                       DB_URL_ENV,
                                       DEFAULT_UI_PORT,
                                       SIMPLE_AUTH_MANAGER,
                                       airflow_env,
                                       celery_env,
                                       check_db_driver,
                                       database_path,
                                       jwt_secret,
                                       masked_db_url,
                                       metadata_db_url,
                                       password_file,
                                       readiness_env,
)
from readiness.dev.airflow.migrate import ensure_admin_password, init_db
from readiness.dev.airflow.rest import AirflowApi
from readiness.dev.airflow.results import AirflowLocalError, DagRunFailed, DagRunResult
from readiness.dev.airflow.services import AirflowServices, run_ui

__all__ = [
    "ADMIN_USER", "AIRFLOW_DB_ENV", "DAGS_FOLDER", "DB_URL_ENV", "DEFAULT_UI_PORT", "SIMPLE_AUTH_MANAGER",
    "AirflowApi", "AirflowLocalError", "AirflowServices", "DagRunFailed", "DagRunResult",
    "airflow_env", "celery_env", "check_db_driver", "database_path", "jwt_secret", "ensure_admin_password", "init_db", "masked_db_url",
    "metadata_db_url", "password_file", "readiness_env", "run_dag", "run_ui",
]
