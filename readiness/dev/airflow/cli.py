"""The command line ``python -m readiness.dev.airflow run-dag|ui|db-url|init-db|env``, and the
hidden ``_run-dag-worker`` command that :func:`~readiness.dev.airflow.dag_run.run_dag` starts."""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

from readiness.dev import airflow as harness
from readiness.dev.airflow.dag_run import run_dag, run_dag_worker
from readiness.dev.airflow.env import DAGS_FOLDER, DEFAULT_UI_PORT, airflow_env, masked_db_url, metadata_db_url
from readiness.dev.airflow.migrate import init_db
from readiness.dev.airflow.results import DagRunFailed
from readiness.dev.airflow.services import run_ui
from readiness.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    description = harness.__doc__.split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m readiness.dev.airflow", description=description)
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
        return run_dag_worker(args.dag_id, json.loads(args.conf), args.result_file, args.retries)

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
