"""docker/docker-compose.yml and the cluster profile describe one deployment: the same services, ports
and settings (the YAML parsed; no Docker engine needed)."""
from __future__ import annotations

import dataclasses
import re
from urllib.parse import urlsplit

import pytest
import yaml

from readiness.dev.cluster.topology import INIT_JOBS, OPTIONAL, services
from readiness.settings import PROJECT_ROOT, Settings, load_settings

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker" / "docker-compose.yml").read_text(encoding="utf-8"))
COMPOSE_TEXT = (PROJECT_ROOT / "docker" / "docker-compose.yml").read_text(encoding="utf-8")
PRODUCTION = load_settings("production", environ={})
CLUSTER = load_settings("cluster", environ={})
#: Secrets the deployment reads from docker/.env, as its header and README name them.
ENV_SECRETS = {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_ADMIN_PASSWORD",
               "READINESS_WEBHOOK_URL"}
#: Where the two profiles may differ: where things are (hosts, ports, paths) and how big the machines are.
ADDRESSES = {"kafka_bootstrap", "kafka_controller_port", "kafka_controller_quorum", "spark_master",
             "spark_master_ui", "spark_driver_host", "var_dir", "cache_dir", "airflow_port", "redis_port",
             "postgres_port"}
SIZING = {"spark_driver_memory", "spark_shuffle_partitions", "spark_cores_max"}


def _command(service: dict) -> str:
    command = service.get("command", [])
    return " ".join(command) if isinstance(command, list) else str(command)


def _long_running() -> dict[str, dict]:
    """The services every deployment runs (not the one-shot jobs, not those behind a compose profile)."""
    return {name: spec for name, spec in COMPOSE["services"].items()
            if name not in INIT_JOBS and not spec.get("profiles")}


def test_compose_runs_the_services_of_the_cluster_profile():
    assert sorted(_long_running()) == sorted(s.name for s in services(PRODUCTION))
    assert [s.name for s in services(CLUSTER)] == [s.name for s in services(PRODUCTION)]
    assert set(INIT_JOBS) <= set(COMPOSE["services"])


def test_the_optional_services_run_only_under_their_profile_and_are_restarted():
    optional = {name for name, spec in COMPOSE["services"].items() if spec.get("profiles")}
    assert optional == {s.name for chosen in OPTIONAL.values() for s in chosen}
    for profile, chosen in OPTIONAL.items():
        for service in chosen:
            spec = COMPOSE["services"][service.name]
            assert spec["profiles"] == [profile] and service.runs in _command(spec)
            assert spec["restart"] == "unless-stopped"
            assert all("condition" in dependency for dependency in spec["depends_on"].values())


@pytest.mark.parametrize("service", services(PRODUCTION), ids=lambda s: s.name)
def test_each_compose_service_runs_what_the_cluster_runs(service):
    spec = COMPOSE["services"][service.name]
    assert service.runs in _command(spec) or service.runs in spec.get("image", ""), service.name


def _env(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in COMPOSE["services"][name]["environment"].items()}


def test_compose_ports_are_the_production_profile_ports():
    ports = {s.name: s.ports for s in services(PRODUCTION)}
    env = _env("airflow-api")
    assert re.search(r"@redis:(\d+)/", env["AIRFLOW__CELERY__BROKER_URL"]).group(1) == str(ports["redis"]["redis"])
    assert re.search(r"@postgres:(\d+)/", env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).group(1) == str(ports["postgres"]["sql"])
    assert urlsplit(env["AIRFLOW__API__BASE_URL"]).port == ports["airflow-api"]["api"]
    assert f"--port {ports['airflow-api']['api']}" in _command(COMPOSE["services"]["airflow-api"])
    for node in range(1, 4):
        assert f"--node-id {node}" in _command(COMPOSE["services"][f"kafka-{node}"])
        assert f"--advertised-host kafka-{node}" in _command(COMPOSE["services"][f"kafka-{node}"])
        assert COMPOSE["services"][f"kafka-{node}"]["healthcheck"]["test"][-2:] == ["--check-node", str(node)]


def test_the_cluster_profile_gives_every_service_its_own_ports():
    ports = [p for s in services(CLUSTER) for p in s.ports.values()]
    assert len(ports) == len(set(ports)), sorted(ports)


@pytest.mark.parametrize("field", sorted({f.name for f in dataclasses.fields(Settings)} - ADDRESSES - SIZING - {"env"}))
def test_the_cluster_and_production_profiles_agree_on_everything_but_addresses_and_sizes(field):
    assert getattr(CLUSTER, field) == getattr(PRODUCTION, field), field


def test_replication_is_the_same_in_both_profiles():
    for settings in (CLUSTER, PRODUCTION):
        assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (3, 2)
        assert len(settings.kafka_brokers) == len(settings.controller_voters) == 3
        assert (settings.airflow_executor, settings.celery_workers, settings.spark_workers) == ("CeleryExecutor", 2, 2)


def test_every_airflow_process_shares_the_jwt_secret_and_a_production_auth_manager():
    for name in COMPOSE["services"]:
        if not name.startswith("airflow"):
            continue
        env = _env(name)
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "${AIRFLOW_JWT_SECRET:?set AIRFLOW_JWT_SECRET}", name
        assert "SimpleAuthManager" not in env["AIRFLOW__CORE__AUTH_MANAGER"], name
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name


def test_every_dependency_waits_for_a_condition():
    for name, spec in COMPOSE["services"].items():
        depends = spec.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for target, rule in depends.items():
            assert rule.get("condition") in ("service_healthy", "service_completed_successfully", "service_started"), (
                name, target)
            if target in INIT_JOBS:
                assert rule["condition"] == "service_completed_successfully", (name, target)


def test_secrets_come_only_from_the_env_file_and_each_declared_one_is_read():
    referenced = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE_TEXT))
    assert referenced == ENV_SECRETS
    readme = (PROJECT_ROOT / "docker" / "README.md").read_text(encoding="utf-8")
    assert all(name in readme for name in ENV_SECRETS)
    literal = re.findall(r"(?i)(password|secret)\S*\s*[:=]\s*(?!\$\{)([A-Za-z0-9]{6,})", COMPOSE_TEXT)
    assert not literal, literal


def test_the_quorum_and_brokers_of_a_profile_are_read_in_node_order():
    assert CLUSTER.kafka_brokers == ["127.0.0.1:29092", "127.0.0.1:29192", "127.0.0.1:29292"]
    assert CLUSTER.controller_voters == {1: ("127.0.0.1", 29093), 2: ("127.0.0.1", 29193), 3: ("127.0.0.1", 29293)}
    single = load_settings("local", environ={})
    assert single.controller_voters == {1: ("127.0.0.1", 9093)} and single.kafka_brokers == ["127.0.0.1:9092"]
