"""Running one DAG end to end without the services: :func:`run_dag` starts this package's hidden
``_run-dag-worker`` command in a subprocess with :func:`airflow_env`, and :func:`run_dag_worker`
is that command (parse the DAGs, record them, ``DAG.test``, write the result as JSON)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from readiness.dev.airflow.env import airflow_env
from readiness.dev.airflow.migrate import migrate_lock
from readiness.dev.airflow.processes import LOG_TAIL_LINES, kill_group, pump
from readiness.dev.airflow.results import DagRunFailed, DagRunResult
from readiness.settings import Settings

WORKER_MODULE = "readiness.dev.airflow"  # `python -m readiness.dev.airflow _run-dag-worker ...`


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
        WORKER_MODULE,
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
        reader = threading.Thread(target=pump, args=(proc.stdout, log, tail, echo), daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(proc)
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


def run_dag_worker(dag_id: str, conf: dict[str, Any], result_file: Path, retries: int | None) -> int:
    """Inside the Airflow environment: parse, sync to the DB, ``DAG.test``, write the result."""

    def write(data: dict[str, Any]) -> None:
        tmp = result_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, default=str, indent=2))
        tmp.replace(result_file)

    # Airflow reads its configuration (AIRFLOW_HOME, the metadata database, ...) when first
    # imported, so it is imported only here, in the worker subprocess that run_dag started with
    # airflow_env(); importing it at module top would configure it from the caller's environment.
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.db import upgradedb
    from airflow.utils.session import create_session

    # What `airflow db migrate` does (a no-op at head), without starting another interpreter.
    with migrate_lock(os.environ["AIRFLOW_HOME"]):
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
