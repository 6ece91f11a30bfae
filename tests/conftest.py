"""Shared fixtures: a real local Kafka broker for the whole test session; how the suite is split
between parallel workers (``make test TEST_WORKERS=N``, pytest-xdist ``--dist loadgroup``)."""

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


# The parallel run's unit of work is a module (its module-scoped fixtures start engines once), and
# the whole cluster package (one cluster for its modules). The largest units are handed out first, so
# that neither worker is left with a long one at the end: these, in the order of their measured time
# (docs/cluster.md, "Measured"); every other module follows in collection order.
LONGEST_FIRST = (
    "tests/cluster",
    "tests/integration/test_orchestration_engine.py",
    "tests/faults/test_ingest_faults.py",
    "tests/faults/test_period_faults.py",
    "tests/integration/test_analyst_integration.py",
    "tests/integration/test_hostile_wire.py",
    "tests/integration/test_pipeline_integration.py",
    "tests/faults/test_ingest_broker_faults.py",
    "tests/faults/test_publish_faults.py",
)


def work_unit(nodeid: str) -> str:
    """The parallel run's unit a test belongs to: ``tests/cluster`` or its module's path."""
    module = nodeid.split("::", 1)[0]
    return "tests/cluster" if module.startswith("tests/cluster/") else module


def _rank(unit: str) -> int:
    return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group every test by :func:`work_unit` (``xdist_group``) and put the longest units first; the
    sort is stable, so tests keep their order within a unit."""
    for item in items:
        item.add_marker(pytest.mark.xdist_group(work_unit(item.nodeid)))
    items.sort(key=lambda item: _rank(work_unit(item.nodeid)))
