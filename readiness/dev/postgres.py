"""A PostgreSQL server the project starts for the Airflow metadata (the cluster profile), on loopback.

Everything lives under ``<var_dir>/postgres``: the cluster (``data/``), its log and its Unix socket. It is
created once with ``initdb``; the server listens on ``127.0.0.1:<postgres_port>`` only and asks every TCP
client for a password (``scram-sha-256``). The ``airflow`` role's password is generated once into
``<secrets_dir>/postgres.password`` (mode 0600) and is never printed; :meth:`LocalPostgres.url` gives the
SQLAlchemy URL with it as a :class:`~readiness.settings.Secret`. The superuser is the operating-system user
that runs the server, reachable only through the Unix socket (``peer``), which the setup uses to create the
role and the database.

PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user (``runuser``), which
then owns ``<var_dir>/postgres``. When ``postgres`` cannot reach ``var_dir`` (a parent folder that others
may not enter, such as pytest's ``/tmp/pytest-of-root``), the cluster lives in
``<tmp>/readiness-postgres-<hash of var_dir>`` instead and ``<var_dir>/postgres`` is a symbolic link to it;
such a folder without its link is left from an earlier var_dir at the same path, and is discarded.
``pg_ctl`` starts the server in the background (it outlives the command that started it) and keeps its
pid in ``data/postmaster.pid``.
"""
from __future__ import annotations

import getpass
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from readiness.ops.secrets import ensure_secret_file
from readiness.settings import Secret, Settings

DATABASE = "airflow"
ROLE = "airflow"
PASSWORD_FILE = "postgres.password"
RUN_AS = "postgres"  # the operating-system user of the server when this process is root


class PostgresError(RuntimeError):
    """The server could not be set up, started or reached."""


def pg_binary(name: str) -> str:
    """``initdb``, ``pg_ctl``, ``psql``... from PATH or the newest ``/usr/lib/postgresql/<v>/bin``."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if not candidates:
        raise PostgresError(f"PostgreSQL's {name} is not installed: `make postgresql` installs it")
    return str(candidates[-1])


def _reachable_by(path: Path, user: str) -> bool:
    """Whether ``user`` may enter every folder down to ``path`` (search permission, by mode bits)."""
    uid = pwd.getpwnam(user).pw_uid
    for folder in [*reversed(path.parents), path]:
        try:
            st = folder.stat()
        except FileNotFoundError:
            return True  # created later by root with the default mode (0755 under umask 022)
        if not (st.st_mode & stat.S_IXOTH or (st.st_uid == uid and st.st_mode & stat.S_IXUSR)):
            return False
    return True


class LocalPostgres:
    """The PostgreSQL of ``settings`` (``postgres_port``) with the ``airflow`` database::

        pg = LocalPostgres(settings)
        pg.start()              # initdb on first use, then pg_ctl start; idempotent
        url = pg.url()          # Secret('postgresql+psycopg2://airflow:...@127.0.0.1:<port>/airflow')
        pg.stop()
    """

    def __init__(self, settings: Settings) -> None:
        if not settings.postgres_port:
            raise PostgresError("postgres_port is 0: these settings start no PostgreSQL")
        self.settings = settings
        self.port = settings.postgres_port
        self.var_dir = Path(settings.var_dir).resolve()
        self.link = self.var_dir / "postgres"
        self.password_file = settings.secrets_dir / PASSWORD_FILE
        self._as_user = ["runuser", "-u", RUN_AS, "--"] if os.geteuid() == 0 else []
        self.superuser = RUN_AS if self._as_user else getpass.getuser()

    # -- where it lives

    @property
    def root(self) -> Path:
        """The folder of the cluster, its log and socket (``<var_dir>/postgres`` or where that links to)."""
        if self.link.is_symlink() or self.link.exists() or not self._as_user or _reachable_by(self.var_dir, RUN_AS):
            return self.link.resolve()
        digest = hashlib.sha256(str(self.var_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"readiness-postgres-{digest}"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    # -- the secret

    def password(self) -> Secret:
        return Secret(ensure_secret_file(self.password_file))

    def url(self) -> Secret:
        """The SQLAlchemy URL of the ``airflow`` database (psycopg2; Airflow derives the asyncpg one)."""
        return Secret(f"postgresql+psycopg2://{ROLE}:{self.password().reveal()}@127.0.0.1:{self.port}/{DATABASE}")

    # -- lifecycle

    def running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        return self._run(pg_binary("pg_ctl"), "-D", str(self.data), "status", check=False).returncode == 0

    def start(self, timeout: float = 120) -> "LocalPostgres":
        """Create the cluster on first use, start the server unless it runs, create role and database."""
        self._initdb()
        if self.running() and self._listening_port() != self.port:  # the settings moved it: restart there
            self.stop()
        if not self.running():
            options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
            self._run(pg_binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w",
                      "-t", str(int(timeout)), "start", timeout=timeout + 10)
        self._ensure_database()
        return self

    def stop(self, timeout: float = 60) -> bool:
        """Fast shutdown (clients disconnected); False if it was not running."""
        if not self.running():
            return False
        self._run(pg_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", str(int(timeout)), "stop",
                  timeout=timeout + 10)
        return True

    def remove(self) -> None:
        """Stop the server and delete its cluster (the password file stays with the other secrets)."""
        self.stop()
        root = self.root
        if self.link.is_symlink():
            self.link.unlink()
        shutil.rmtree(root, ignore_errors=True)

    def _listening_port(self) -> int | None:
        """The port of the running server (fourth line of ``postmaster.pid``)."""
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, ValueError, IndexError):
            return None

    def pid(self) -> int | None:
        """The postmaster's pid (first line of ``postmaster.pid``) while it runs."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0]) if self.running() else None
        except (OSError, ValueError, IndexError):
            return None

    # -- setup

    def _initdb(self) -> None:
        root = self.root
        in_tmp = root != self.link.resolve()  # var_dir has no link yet (see ``root``)
        if in_tmp and root.exists():
            self._discard_stale(root)
        if (self.data / "PG_VERSION").exists():
            return
        root.mkdir(parents=True, exist_ok=True)
        if in_tmp:
            self.var_dir.mkdir(parents=True, exist_ok=True)
            self.link.symlink_to(root, target_is_directory=True)
        if self._as_user:
            shutil.chown(self.root, RUN_AS, RUN_AS)
            os.chmod(self.root, 0o700)
            if self._run("test", "-w", str(self.root), check=False).returncode != 0:
                raise PostgresError(
                    f"the `{RUN_AS}` user cannot reach {self.root}: a parent folder is not searchable by others "
                    "(PostgreSQL cannot run as root; put var_dir where `postgres` may enter)")
        if self.data.exists():  # a half-made cluster from an interrupted initdb
            shutil.rmtree(self.data)
        # Host connections need a password: the superuser has none, so only the Unix socket (peer) reaches it.
        self._run(pg_binary("initdb"), "-D", str(self.data), "-U", self.superuser, "-E", "UTF8",
                  "--auth-local=peer", "--auth-host=scram-sha-256", timeout=180)

    def _discard_stale(self, root: Path) -> None:
        """A cluster in ``<tmp>`` for this var_dir's path, but no link in var_dir: it belongs to an earlier
        var_dir at the same path (deleted since, with its secrets), so its metadata is not this one's.
        Stopped if it still runs, then removed."""
        if (root / "data" / "PG_VERSION").exists():
            self._run(pg_binary("pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop", check=False)
        shutil.rmtree(root)

    def _ensure_database(self) -> None:
        password = self.password().reveal()
        assert password.replace("-", "").replace("_", "").isalnum()  # token_urlsafe: safe inside a literal
        # SQL on stdin (never on a command line, where `ps` would show the password).
        script = f"""
SELECT 'CREATE ROLE {ROLE} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') \\gexec
ALTER ROLE {ROLE} WITH LOGIN PASSWORD '{password}';
SELECT 'CREATE DATABASE {DATABASE} OWNER {ROLE} ENCODING ''UTF8''' WHERE NOT EXISTS
  (SELECT FROM pg_database WHERE datname = '{DATABASE}') \\gexec
"""
        deadline = time.monotonic() + 30
        while True:  # just after `pg_ctl start -w` the socket can still refuse for a moment
            proc = self._run(pg_binary("psql"), "-h", str(self.root), "-p", str(self.port), "-U", self.superuser,
                             "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-f", "-", input=script, check=False)
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise PostgresError(f"creating the {DATABASE} database failed: {proc.stderr.strip()[-2000:]}")
            time.sleep(1)

    def _run(self, *cmd: str, check: bool = True, timeout: float = 60, input: str | None = None
             ) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self._as_user, *cmd], capture_output=True, text=True, timeout=timeout, input=input,
                              cwd="/")
        if check and proc.returncode != 0:
            raise PostgresError(f"{' '.join(cmd[:2])} ... failed (exit {proc.returncode}): "
                                f"{(proc.stdout + proc.stderr).strip()[-2000:]}\nlog: {self.log}")
        return proc
