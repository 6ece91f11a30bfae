"""One settings object per environment, chosen by ``READINESS_ENV``.

Defaults live here; any field can be overridden by an environment variable named
``READINESS_<FIELD>`` (upper case). Secrets (webhook tokens, database passwords) are read
only from the environment and never have defaults in code.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Where things live and how the engines are reached, for one environment."""

    env: str = "local"
    # Maven artifacts (Kafka broker, Spark packages) are fetched once into this cache.
    cache_dir: Path = PROJECT_ROOT / ".cache"
    # Runtime state: Delta tables, checkpoints, broker logs, Airflow home.
    var_dir: Path = PROJECT_ROOT / "var"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093
    topic_reports: str = "readiness.report-submissions.v1"
    topic_targets: str = "readiness.target-plans.v1"
    topic_partitions: int = 6
    # Reports stay on the topic long enough to rebuild bronze after a lost checkpoint.
    topic_retention_ms: int = 90 * 24 * 3600 * 1000
    spark_master: str = "local[2]"
    spark_driver_memory: str = "2g"
    spark_shuffle_partitions: int = 4
    timezone: str = "Asia/Ho_Chi_Minh"
    webhook_url: str = ""

    @property
    def lake_dir(self) -> Path:
        return self.var_dir / "lake"

    @property
    def checkpoint_dir(self) -> Path:
        return self.var_dir / "checkpoints"

    @property
    def kafka_dir(self) -> Path:
        return self.var_dir / "kafka"

    @property
    def airflow_home(self) -> Path:
        return self.var_dir / "airflow"

    def table_path(self, name: str) -> str:
        """Filesystem path of a Delta table such as ``bronze_report_events``."""
        return str(self.lake_dir / name)


_PROFILES: dict[str, dict[str, object]] = {
    "local": {},
    # CI: same engines on the same loopback, on ports unlikely to clash with a developer's broker.
    "ci": {"kafka_bootstrap": "127.0.0.1:19092", "kafka_controller_port": 19093},
    # Production: the multi-host deployment in docker/; hosts come from the environment.
    "production": {
        "kafka_bootstrap": "kafka:9092",
        "spark_master": "spark://spark-master:7077",
        "var_dir": Path("/data/readiness"),
        "cache_dir": Path("/opt/readiness/cache"),
        "spark_driver_memory": "4g",
        "spark_shuffle_partitions": 34,
    },
}


def _coerce(value: str, kind: object) -> object:
    if kind is int or kind == "int":
        return int(value)
    if kind is Path or kind == "Path":
        return Path(value)
    return value


def load_settings(env: str | None = None, **overrides: object) -> Settings:
    """Build the settings for ``env`` (default: ``READINESS_ENV`` or ``local``).

    Precedence: explicit ``overrides`` > ``READINESS_<FIELD>`` environment variables >
    the environment's profile > the defaults above.
    """
    env = env or os.environ.get("READINESS_ENV", "local")
    if env not in _PROFILES:
        raise ValueError(f"unknown READINESS_ENV {env!r}; expected one of {sorted(_PROFILES)}")
    values: dict[str, object] = {"env": env, **_PROFILES[env]}
    for f in dataclasses.fields(Settings):
        raw = os.environ.get(f"READINESS_{f.name.upper()}")
        if raw is not None and f.name != "env":
            values[f.name] = _coerce(raw, f.type)
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
