"""A Redis server the project starts as the broker of Airflow's CeleryExecutor (the cluster profile).

``redis-server`` runs in the foreground as a :class:`~readiness.dev.daemon.Daemon` (pid file, log, its own
session) with a configuration written under ``<var_dir>/redis``: loopback only, ``redis_port``, protected
mode, a password (``requirepass``) generated once into ``<secrets_dir>/redis.password`` (mode 0600, never
printed; the configuration file holding it is 0600 too), its data folder beside it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from readiness.dev.daemon import Daemon
from readiness.ops.secrets import ensure_secret_file, write_private
from readiness.settings import Secret, Settings

PASSWORD_FILE = "redis.password"


class RedisError(RuntimeError):
    """Redis is not installed or not configured for these settings."""


class LocalRedis:
    """The Redis of ``settings`` (``redis_port``)::

        redis = LocalRedis(settings)
        redis.start()                 # idempotent; waits until it answers PING with the password
        redis.url()                   # Secret('redis://:<password>@127.0.0.1:<port>/0')
        redis.stop()
    """

    def __init__(self, settings: Settings) -> None:
        if not settings.redis_port:
            raise RedisError("redis_port is 0: these settings start no Redis")
        self.settings = settings
        self.port = settings.redis_port
        self.root = Path(settings.var_dir).resolve() / "redis"
        self.config = self.root / "redis.conf"
        self.password_file = settings.secrets_dir / PASSWORD_FILE
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.daemon = Daemon(
            name="redis", command=[binary, str(self.config)], cwd=self.root, log=self.root / "redis.log",
            pid_file=self.root / "redis.pid", marker=str(self.config), ready=self.ping)

    def password(self) -> Secret:
        return Secret(ensure_secret_file(self.password_file))

    def url(self, db: int = 0) -> Secret:
        """The broker URL with the password (Celery's ``broker_url``)."""
        return Secret(f"redis://:{self.password().reveal()}@127.0.0.1:{self.port}/{db}")

    def ping(self) -> bool:
        import redis

        try:
            client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password().reveal(),
                                 socket_timeout=2, socket_connect_timeout=2)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except redis.RedisError:
            return False

    def write_config(self) -> Path:
        if not shutil.which("redis-server") and not Path("/usr/bin/redis-server").exists():
            raise RedisError("redis-server is not installed: `make redis` installs it")
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        lines = [
            "bind 127.0.0.1",
            f"port {self.port}",
            "protected-mode yes",
            "daemonize no",
            "set-proc-title no",  # keep the command line with this config's path: the pid file's marker
            f"dir {self.root / 'data'}",
            "appendonly no",
            'save ""',  # the queue is rebuilt by the scheduler after a restart; no snapshots to disk
            "loglevel notice",
            f"requirepass {self.password().reveal()}",
        ]
        return write_private(self.config, ("\n".join(lines) + "\n").encode())

    def start(self, timeout: float = 30) -> "LocalRedis":
        if not self.daemon.running():
            self.write_config()
            self.daemon.start()
        self.daemon.wait_ready(timeout)
        return self

    def stop(self) -> bool:
        return self.daemon.stop(grace=10)
