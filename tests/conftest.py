"""Shared fixtures: a real local Kafka broker for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from readiness.dev.kafka_broker import LocalKafka
from readiness.dev.provision import shared_deployment_files
from readiness.ops.topics import ensure_topics
from readiness.settings import Settings, load_settings
from support.ports import free_port


@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """CI settings on free loopback ports with a fresh var dir; jars stay in the shared cache.

    The deployment's CA, the principals' passwords and the key registry are named explicitly, so
    settings derived with another var dir (``isolated``) still connect and sign.
    """
    var_dir = tmp_path_factory.mktemp("var")
    return load_settings(
        env="ci",
        var_dir=var_dir,
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(),
        **shared_deployment_files(var_dir),
    )


@pytest.fixture(scope="session")
def kafka_broker(kafka_settings: Settings) -> Iterator[Settings]:
    """A running single-node broker with the project's topics; stopped after the session."""
    kafka = LocalKafka(kafka_settings)
    kafka.start()
    try:
        ensure_topics(kafka_settings)
        yield kafka_settings
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def isolated(kafka_broker: Settings, tmp_path_factory: pytest.TempPathFactory):
    """Settings on the shared broker with their own topics and var dir, so tests do not see
    each other's events or tables: ``isolated("name")``."""
    import dataclasses

    def make(name: str) -> Settings:
        settings = dataclasses.replace(
            kafka_broker, var_dir=tmp_path_factory.mktemp(name),
            topic_reports=f"test.{name}.reports", topic_targets=f"test.{name}.targets")
        ensure_topics(settings)
        return settings

    return make


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """One local SparkSession (with Delta and the Kafka source) for the test process."""
    from readiness.lake.spark import get_spark

    session = get_spark(load_settings(env="ci", var_dir=tmp_path_factory.mktemp("spark")))
    yield session
    session.stop()
