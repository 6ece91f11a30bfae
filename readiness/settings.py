"""One settings object per environment, chosen by ``READINESS_ENV``.

Defaults live here; any field can be overridden by an environment variable named
``READINESS_<FIELD>`` (upper case). Secrets (webhook token, the Airflow metadata URL with its
password) have no defaults in code: they come from the environment, or from a file named by
``READINESS_<FIELD>_FILE`` (a mounted secret), and are held as :class:`Secret`, which never prints.
This module is the only place that reads ``READINESS_*`` variables (a test enforces it).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Reference data, methodologies and engine configuration shipped inside the package.
PACKAGE_DATA = Path(__file__).resolve().parent / "data"
ENV_PREFIX = "READINESS_"
ENV_VAR = "READINESS_ENV"


class Secret:
    """A secret value: ``str()`` and ``repr()`` show a mask, :meth:`reveal` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True)
class Settings:
    """Where things live and how the engines are reached, for one environment."""

    env: str = "local"
    # Maven artifacts (Kafka broker, Spark packages) are fetched once into this cache.
    cache_dir: Path = PROJECT_ROOT / ".cache"
    # Runtime state: Delta tables, checkpoints, broker logs, Airflow home.
    var_dir: Path = PROJECT_ROOT / "var"
    # One address per broker node (a cluster lists all of them, in node-id order).
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093
    # The KRaft controller quorum, ``<id>@<host>:<port>,...`` (``controller.quorum.voters``); empty:
    # the single node ``1@<bootstrap host>:<kafka_controller_port>``.
    kafka_controller_quorum: str = ""
    # Copies of every partition, and how many must have a write before it is acknowledged
    # (the producer sends with acks=all); unclean leader election is always off.
    kafka_replication_factor: int = 1
    kafka_min_insync_replicas: int = 1
    topic_reports: str = "readiness.report-submissions.v1"
    topic_targets: str = "readiness.target-plans.v1"
    topic_partitions: int = 6
    # How clients reach the brokers: TLS with the deployment's CA and SCRAM (never PLAINTEXT).
    kafka_security_protocol: str = "SASL_SSL"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    # This process's Kafka principal; empty: the role's own (pipeline, admin, province-<code>),
    # whose password is then read from kafka_credentials_dir/<principal>.password.
    kafka_username: str = ""
    kafka_password: Secret = Secret()
    # The CA certificate clients trust; empty: <var_dir>/pki/ca.pem (the one the project generates).
    kafka_ca_file: str = ""
    # Passwords of the principals this machine may act as (one file each, mode 0600); empty: <var_dir>/secrets/kafka.
    kafka_credentials_dir: str = ""
    # How long `readiness publish` (and the producer) waits for Kafka to acknowledge its events before
    # it lists the ones not acknowledged and gives up: the bound on a publish with the broker gone.
    publish_timeout_s: float = 30.0
    # How long reports stay on the topic (the ministry's re-read window for bronze).
    topic_retention_ms: int = 90 * 24 * 3600 * 1000
    # Most Kafka offsets one ingest micro-batch reads (a backlog is ingested in batches of this size).
    ingest_max_offsets_per_batch: int = 200_000
    # The streaming service (`readiness stream`): seconds between micro-batch triggers; how long a
    # SIGTERM waits for the running batch to end before the query is stopped under it; and when its
    # watchdog calls it down (no heartbeat for this long) or behind (more offsets unread than this).
    stream_trigger_s: float = 3.0
    stream_stop_timeout_s: float = 120.0
    stream_max_silence_s: float = 300.0
    stream_max_lag: int = 20_000
    # The streaming-service watchdog DAG's cron (in the reporting calendar's time zone).
    stream_watch_cron: str = "*/5 * * * *"
    spark_master: str = "local[2]"
    spark_driver_memory: str = "2g"
    spark_shuffle_partitions: int = 4
    # JVM options added to the Spark driver's and executors' own (e.g. the JIT for short-lived jobs).
    spark_jvm_options: str = ""
    # The address executors reach the driver at; empty: Spark's default (the host name). Loopback
    # clusters set 127.0.0.1.
    spark_driver_host: str = ""
    # A standalone master's web UI (its /json/ endpoint lists workers and applications); empty: none.
    spark_master_ui: str = ""
    # What each executor of a standalone cluster gets, and the most cores one application takes.
    spark_executor_memory: str = "1g"
    spark_cores_max: int = 0
    # The Spark standalone workers the cluster profile starts on this machine, and each one's share.
    spark_workers: int = 0
    spark_worker_cores: int = 1
    spark_worker_memory: str = "1g"
    # The ministry's registry of the provinces' public signing keys; empty: <var_dir>/keys/registry.json.
    key_registry_file: str = ""
    # A province's own private signing key; empty: its newest key under <var_dir>/keys/provinces/<code>/.
    signing_key_file: str = ""
    # Alerts: a JSON POST per alert; the bearer token is a secret.
    webhook_url: str = ""
    webhook_token: Secret = Secret()
    # The ingest DAG's cron (read by the DAG processor, in the reporting calendar's time zone).
    ingest_cron: str = "*/5 * * * *"
    # Hours without any new event after which the ingest alerts once (0 = off).
    ingest_silence_hours: float = 24.0
    # The analysts' SQL server (Spark Thrift Server, JDBC).
    sql_port: int = 10000
    # Airflow metadata database (SQLAlchemy URL with its password); empty: SQLite under airflow_home,
    # or the PostgreSQL the cluster profile starts (postgres_port) when that is set.
    airflow_db_url: Secret = Secret()
    # Airflow: the API server's port (UI, REST, the workers' execution API) and the executor.
    airflow_port: int = 8080
    airflow_executor: str = "LocalExecutor"
    # The CeleryExecutor's workers started on this machine (each runs one task at a time) and its Redis.
    celery_workers: int = 0
    redis_port: int = 0
    # A PostgreSQL the project starts for the Airflow metadata (the cluster profile); 0: none.
    postgres_port: int = 0
    # The key Airflow's API server signs the task workers' tokens with, shared by every Airflow
    # process; empty: generated once into <var_dir>/secrets/airflow-jwt.secret.
    airflow_jwt_secret: Secret = Secret()
    # Fault tests only: the named point at which a job kills itself (readiness.ops.faults); empty everywhere else.
    fault_point: str = ""

    @property
    def lake_dir(self) -> Path:
        return self.var_dir / "lake"

    @property
    def checkpoint_dir(self) -> Path:
        return self.var_dir / "checkpoints"

    @property
    def stream_dir(self) -> Path:
        """The streaming service's health file and log."""
        return self.var_dir / "stream"

    @property
    def kafka_dir(self) -> Path:
        return self.var_dir / "kafka"

    @property
    def airflow_home(self) -> Path:
        return self.var_dir / "airflow"

    @property
    def secrets_dir(self) -> Path:
        """Generated secrets of services the project starts (outside git, mode 0600)."""
        return self.var_dir / "secrets"

    @property
    def kafka_brokers(self) -> list[str]:
        """The bootstrap addresses, one per broker node, in node-id order."""
        return [a.strip() for a in self.kafka_bootstrap.split(",") if a.strip()]

    @property
    def controller_voters(self) -> dict[int, tuple[str, int]]:
        """``node id -> (host, controller port)`` of the KRaft quorum."""
        quorum = self.kafka_controller_quorum or (
            f"1@{self.kafka_brokers[0].rsplit(':', 1)[0]}:{self.kafka_controller_port}")
        voters: dict[int, tuple[str, int]] = {}
        for voter in quorum.split(","):
            node, _, address = voter.strip().partition("@")
            host, _, port = address.rpartition(":")
            voters[int(node)] = (host, int(port))
        return voters

    @property
    def pki_dir(self) -> Path:
        return self.var_dir / "pki"

    @property
    def ca_file(self) -> Path:
        return Path(self.kafka_ca_file) if self.kafka_ca_file else self.pki_dir / "ca.pem"

    @property
    def credentials_dir(self) -> Path:
        return Path(self.kafka_credentials_dir) if self.kafka_credentials_dir else self.secrets_dir / "kafka"

    @property
    def keys_dir(self) -> Path:
        return self.var_dir / "keys"

    @property
    def key_registry(self) -> Path:
        return Path(self.key_registry_file) if self.key_registry_file else self.keys_dir / "registry.json"

    @property
    def private_keys_dir(self) -> Path:
        """Private keys this machine holds, one folder per province (the simulator's and the tests'),
        beside the registry they were issued into."""
        return self.key_registry.parent / "provinces"

    def table_path(self, name: str) -> str:
        """Filesystem path of a Delta table such as ``bronze_report_events``."""
        return str(self.lake_dir / name)


def env_name(field: str) -> str:
    """The environment variable of a settings field: ``webhook_token`` -> ``READINESS_WEBHOOK_TOKEN``."""
    return f"{ENV_PREFIX}{field.upper()}"


def secret_fields() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Settings) if f.type in (Secret, "Secret"))


_PROFILES: dict[str, dict[str, object]] = {
    "local": {},
    # CI: same engines on the same loopback, on ports unlikely to clash with a developer's broker.
    # Its Spark jobs are short and many (each test job a fresh JVM on two shared cores): the quick
    # JIT compiler only, which spends less CPU compiling code a short job leaves before it pays off.
    # Without the tiered compiler the JVM reserves 48 MB for compiled code, which a DAG's Spark tasks
    # fill in about two minutes ("CodeCache is full. Compiler has been disabled"): everything after
    # that is interpreted. 256 MB is the reservation the tiered default makes.
    "ci": {"kafka_bootstrap": "127.0.0.1:19092", "kafka_controller_port": 19093,
           "spark_jvm_options": "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"},
    # A cluster on this machine's loopback (`make cluster-up`): three KRaft nodes, a Spark standalone
    # master with two workers, Airflow's CeleryExecutor on Redis with two workers and PostgreSQL,
    # all under var/cluster/ (the lake a directory every node sees).
    "cluster": {
        "var_dir": PROJECT_ROOT / "var" / "cluster",
        "kafka_bootstrap": "127.0.0.1:29092,127.0.0.1:29192,127.0.0.1:29292",
        "kafka_controller_port": 29093,
        "kafka_controller_quorum": "1@127.0.0.1:29093,2@127.0.0.1:29193,3@127.0.0.1:29293",
        "kafka_replication_factor": 3,
        "kafka_min_insync_replicas": 2,
        "spark_master": "spark://127.0.0.1:27077",
        "spark_master_ui": "http://127.0.0.1:28080",
        "spark_driver_host": "127.0.0.1",
        "spark_driver_memory": "1g",
        "spark_executor_memory": "1g",
        "spark_cores_max": 2,
        "spark_workers": 2,
        "spark_worker_cores": 1,
        "spark_worker_memory": "1g",
        "airflow_port": 28088,
        "airflow_executor": "CeleryExecutor",
        "celery_workers": 2,
        "redis_port": 26379,
        "postgres_port": 25432,
    },
    # Production: the multi-host deployment in docker/ (the image's layout); hosts from the environment.
    # The same topology as "cluster", one service per host; secrets and URLs from the environment.
    "production": {
        "kafka_bootstrap": "kafka-1:9092,kafka-2:9092,kafka-3:9092",
        "kafka_controller_port": 9093,
        "kafka_controller_quorum": "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093",
        "kafka_replication_factor": 3,
        "kafka_min_insync_replicas": 2,
        "spark_master": "spark://spark-master:7077",
        "spark_master_ui": "http://spark-master:8080",
        "var_dir": Path("/data/readiness"),
        "cache_dir": Path("/opt/readiness/.cache"),
        "spark_driver_memory": "4g",
        "spark_shuffle_partitions": 34,
        "spark_executor_memory": "1g",
        "spark_workers": 2,
        "spark_worker_cores": 1,
        "spark_worker_memory": "1g",
        "airflow_port": 8080,
        "airflow_executor": "CeleryExecutor",
        "celery_workers": 2,
        "redis_port": 6379,
    },
}


def _coerce(value: str, kind: object) -> object:
    if kind in (int, "int"):
        return int(value)
    if kind in (float, "float"):
        return float(value)
    if kind in (Path, "Path"):
        return Path(value)
    if kind in (Secret, "Secret"):
        return Secret(value)
    return value


def _read_env(name: str, kind: object, environ: dict[str, str]) -> Any:
    raw = environ.get(env_name(name))
    if raw is None and kind in (Secret, "Secret"):
        path = environ.get(env_name(name) + "_FILE")
        if path:
            raw = Path(path).read_text(encoding="utf-8").strip()
    return None if raw is None else _coerce(raw, kind)


def load_settings(env: str | None = None, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Build the settings for ``env`` (default: ``READINESS_ENV`` or ``local``).

    Precedence: explicit ``overrides`` > ``READINESS_<FIELD>`` environment variables (secrets also
    ``READINESS_<FIELD>_FILE``) > the environment's profile > the defaults above. ``environ``
    defaults to ``os.environ``.
    """
    environ = dict(os.environ) if environ is None else environ
    env = env or environ.get(ENV_VAR, "local")
    if env not in _PROFILES:
        raise ValueError(f"unknown {ENV_VAR} {env!r}; expected one of {sorted(_PROFILES)}")
    values: dict[str, object] = {"env": env, **_PROFILES[env]}
    for f in dataclasses.fields(Settings):
        if f.name == "env":
            continue
        value = _read_env(f.name, f.type, environ)
        if value is not None:
            values[f.name] = value
    for name in secret_fields():
        if isinstance(overrides.get(name), str):
            overrides[name] = Secret(str(overrides[name]))
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def settings_env(settings: Settings) -> dict[str, str]:
    """``READINESS_*`` variables from which ``load_settings()`` in another process rebuilds ``settings``.

    Every field is exported (also those set by override), paths made absolute; secrets only when
    set, by value (a child process's environment, never printed).
    """
    env = {ENV_VAR: settings.env}
    for f in dataclasses.fields(Settings):
        if f.name == "env":
            continue
        value = getattr(settings, f.name)
        if isinstance(value, Secret):
            if value:
                env[env_name(f.name)] = value.reveal()
            continue
        env[env_name(f.name)] = str(value.resolve() if isinstance(value, Path) else value)
    return env
