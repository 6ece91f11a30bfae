"""The local Kafka 4.0.1 broker: start, topics, a keyed round trip, idempotent up, stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from readiness.dev.kafka_broker import LocalKafka
from readiness.ops.kafka_client import PIPELINE, kafka_python_config, province_principal
from readiness.ops.topics import broker_answers, describe_topic, ensure_topics
from readiness.settings import Settings, load_settings

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_broker_answers(kafka_broker: Settings) -> None:
    kafka = LocalKafka(kafka_broker)
    assert kafka.is_running()
    assert kafka.pid() is not None
    assert (kafka_broker.kafka_dir / "data" / "meta.properties").is_file()


def test_topics_have_configured_partitions_and_retention(kafka_broker: Settings) -> None:
    for topic in (kafka_broker.topic_reports, kafka_broker.topic_targets):
        assert describe_topic(kafka_broker, topic) == {
            "partitions": kafka_broker.topic_partitions,
            "retention_ms": kafka_broker.topic_retention_ms,
        }
    # Idempotent: a second call accepts the existing topics.
    assert ensure_topics(kafka_broker) == {
        kafka_broker.topic_reports: kafka_broker.topic_partitions,
        kafka_broker.topic_targets: kafka_broker.topic_partitions,
    }


def test_keyed_message_round_trip(kafka_broker: Settings) -> None:
    key, value = b"HN", f'{{"report_id": "{uuid.uuid4()}"}}'.encode()
    producer = KafkaProducer(
        **kafka_python_config(kafka_broker, province_principal("01")), acks="all", enable_idempotence=True
    )
    try:
        sent = producer.send(kafka_broker.topic_reports, key=key, value=value).get(timeout=30)
    finally:
        producer.close()

    consumer = KafkaConsumer(**kafka_python_config(kafka_broker, PIPELINE), enable_auto_commit=False)
    try:
        partition = TopicPartition(kafka_broker.topic_reports, sent.partition)
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        records = consumer.poll(timeout_ms=10_000, max_records=1).get(partition, [])
    finally:
        consumer.close()
    assert [(r.key, r.value) for r in records] == [(key, value)]


def test_up_twice_is_a_noop(kafka_broker: Settings) -> None:
    kafka = LocalKafka(kafka_broker)
    pid = kafka.pid()
    kafka.start()
    assert kafka.pid() == pid

    env = {
        **os.environ,
        "READINESS_ENV": kafka_broker.env,
        "READINESS_VAR_DIR": str(kafka_broker.var_dir),
        "READINESS_KAFKA_BOOTSTRAP": kafka_broker.kafka_bootstrap,
        "READINESS_KAFKA_CONTROLLER_PORT": str(kafka_broker.kafka_controller_port),
    }
    cli = [sys.executable, "-m", "readiness.dev.kafka_broker"]
    up = subprocess.run([*cli, "up"], env=env, capture_output=True, text=True, timeout=60)
    assert up.returncode == 0, up.stderr
    assert f"{kafka_broker.topic_reports}: {kafka_broker.topic_partitions} partitions" in up.stdout
    status = subprocess.run([*cli, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and f"pid {pid}" in status.stdout
    assert kafka.pid() == pid


def test_stop_frees_the_port(tmp_path: Path) -> None:
    # A broker of its own: stopping the session broker would break the other tests.
    settings = load_settings(
        env="ci",
        var_dir=tmp_path,
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(),
    )
    with LocalKafka(settings) as kafka:
        assert broker_answers(settings)
        pid = kafka.pid()
        assert pid is not None
    assert not broker_answers(settings)
    assert kafka.pid() is None and not kafka.pid_file.exists()
    assert not Path(f"/proc/{pid}").exists()
