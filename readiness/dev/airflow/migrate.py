"""The metadata database and the UI login: :func:`init_db` (``airflow db migrate``), the lock
that serialises migrations between processes, and the generated ``admin`` password."""
from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path

from readiness.dev.airflow.env import (
    ADMIN_USER,
    airflow_cmd,
    airflow_env,
    check_db_driver,
    metadata_db_url,
    password_file,
)
from readiness.dev.airflow.processes import last_lines
from readiness.dev.airflow.results import AirflowLocalError
from readiness.ops.locks import file_lock
from readiness.settings import Settings


def init_db(settings: Settings, dags_folder: Path | str | None = None, timeout: float = 600) -> float:
    """Create or upgrade the metadata database (``airflow db migrate``; idempotent).

    Serialised with a file lock so concurrent callers do not migrate the same file at once.
    Returns the seconds taken.
    """
    home = settings.airflow_home
    home.mkdir(parents=True, exist_ok=True)
    check_db_driver(metadata_db_url(settings))
    start = time.monotonic()
    with migrate_lock(home):
        proc = subprocess.run(
            airflow_cmd("db", "migrate"),
            env=airflow_env(settings, dags_folder),
            cwd=home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if proc.returncode != 0:
        raise AirflowLocalError(
            f"`airflow db migrate` failed (exit {proc.returncode}) for {home}:\n"
            + last_lines(proc.stdout + proc.stderr)
        )
    return time.monotonic() - start


def migrate_lock(airflow_home: Path | str):
    """Serialise migrations of one metadata database between processes (waits for ever)."""
    return file_lock(Path(airflow_home) / ".db-migrate.lock", timeout=-1)


def ensure_admin_password(settings: Settings) -> str:
    """The UI password of ``admin``, generated into :func:`password_file` on first use."""
    path = password_file(settings)
    # A lock file of its own: the lock truncates the file it locks.
    with file_lock(path.with_name(path.name + ".lock"), timeout=-1):
        content = path.read_text().strip() if path.exists() else ""
        passwords = json.loads(content) if content else {}
        if ADMIN_USER not in passwords:
            passwords[ADMIN_USER] = secrets.token_urlsafe(12)
            path.write_text(json.dumps(passwords) + "\n")
    path.chmod(0o600)
    return passwords[ADMIN_USER]
