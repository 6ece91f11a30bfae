"""The services of a cluster deployment, named once for both places that run them: the cluster
profile on this machine (``make cluster-up``) and the multi-host deployment in ``docker/``.

Each service has a name (the compose service, and the cluster's daemon), what it runs, and the
ports of its roles, read from the settings; a test checks ``docker/docker-compose.yml`` against it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from readiness.settings import Settings

#: One-shot jobs of the deployment (they run to completion before the services that need them).
INIT_JOBS = ("provision", "topics", "airflow-init")


@dataclass(frozen=True)
class Service:
    name: str
    engine: str
    #: What the service runs: the distinctive part of its command line (or its image).
    runs: str
    ports: dict[str, int] = field(default_factory=dict)


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


#: Services a deployment runs only when chosen (a compose profile of the same name): the streaming mode.
OPTIONAL = {"streaming": (Service("stream", "spark", "readiness.cli stream"),)}


def services(settings: Settings) -> list[Service]:
    """Every long-running service of the cluster described by ``settings``, in start order."""
    out = [Service(f"kafka-{node}", "kafka", "readiness.ops.broker serve",
                   {"client": _port(settings.kafka_brokers[node - 1]), "controller": port})
           for node, (_, port) in sorted(settings.controller_voters.items())]
    ui = urlsplit(settings.spark_master_ui).port if settings.spark_master_ui else None
    out.append(Service("spark-master", "spark", "readiness.ops.spark_node master",
                       {"master": _port(settings.spark_master), **({"ui": ui} if ui else {})}))
    out += [Service(f"spark-worker-{i}", "spark", "readiness.ops.spark_node worker")
            for i in range(1, settings.spark_workers + 1)]
    out.append(Service("postgres", "postgres", "postgres", {"sql": settings.postgres_port or 5432}))
    out.append(Service("redis", "redis", "redis-server", {"redis": settings.redis_port}))
    out.append(Service("airflow-api", "airflow", "airflow api-server", {"api": settings.airflow_port}))
    out.append(Service("airflow-scheduler", "airflow", "airflow scheduler"))
    out.append(Service("airflow-dag-processor", "airflow", "airflow dag-processor"))
    out += [Service(f"airflow-worker-{i}", "airflow", "airflow celery worker")
            for i in range(1, settings.celery_workers + 1)]
    return out
