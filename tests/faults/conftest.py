"""The fault tests' own broker: they kill it, so it is never the session's."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from readiness.dev.kafka_broker import LocalKafka
from readiness.dev.provision import shared_deployment_files
from readiness.ops.topics import ensure_topics
from readiness.settings import Settings, load_settings
from support.ports import free_port


@dataclass
class Broker:
    kafka: LocalKafka
    settings: Settings

    def pid(self) -> int:
        pid = self.kafka.pid()
        assert pid is not None, "the test's broker is not running"
        return pid


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Broker]]:
    """``own_broker(name, **settings)``: a broker on free loopback ports with its own var dir and
    topics, started once per module and stopped after it."""
    started: list[LocalKafka] = []

    def make(name: str, **overrides: object) -> Broker:
        var_dir = tmp_path_factory.mktemp(name)
        settings = load_settings(env="ci", var_dir=var_dir, kafka_bootstrap=f"127.0.0.1:{free_port()}",
                                 kafka_controller_port=free_port(), topic_reports=f"faults.{name}.reports",
                                 topic_targets=f"faults.{name}.targets", **shared_deployment_files(var_dir),
                                 **overrides)
        kafka = LocalKafka(settings)
        started.append(kafka)
        kafka.start()
        ensure_topics(settings)
        return Broker(kafka, settings)

    try:
        yield make
    finally:
        for kafka in started:
            kafka.stop()
