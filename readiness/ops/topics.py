"""Kafka topic administration as production uses it: the admin client, the broker check, the topics.

The report and target topics are created explicitly, with the partition count and retention the
settings name (automatic topic creation is off on every broker the project runs).
"""
from __future__ import annotations

import contextlib
import socket
import time
from typing import TypedDict

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from readiness.settings import Settings


class TopicError(RuntimeError):
    """A topic could not be described, or exists with other partitions than the settings say."""


def split_bootstrap(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"kafka_bootstrap must be 'host:port', got {bootstrap!r}")
    return host, int(port)


def _admin(settings: Settings, timeout_ms: int = 10_000) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="readiness-admin",
        request_timeout_ms=timeout_ms,
    )


def broker_answers(settings: Settings) -> bool:
    """True if a Kafka broker answers a metadata request on ``settings.kafka_bootstrap``.

    A plain TCP connect first keeps the common "nothing there" case fast and free of
    kafka-python connection-error logging.
    """
    host, port = split_bootstrap(settings.kafka_bootstrap)
    try:
        socket.create_connection((host, port), timeout=1.0).close()
    except OSError:
        return False
    try:
        admin = _admin(settings, timeout_ms=3_000)
    except KafkaError:
        return False
    try:
        return bool(admin.describe_cluster().get("brokers"))
    except KafkaError:
        return False
    finally:
        admin.close()


def _topic_retention_ms(admin: KafkaAdminClient, topic: str) -> int | None:
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": None})
    for response in admin.describe_configs([resource]):
        for _err, _msg, _type, _name, entries in response.resources:
            for entry in entries:
                if entry[0] == "retention.ms":
                    return int(entry[1])
    return None


class TopicInfo(TypedDict):
    partitions: int
    retention_ms: int | None


def describe_topic(settings: Settings, topic: str, wait: float = 15.0) -> TopicInfo:
    """Partition count and ``retention.ms`` of ``topic`` as the broker reports them.

    Waits up to ``wait`` seconds for the topic to show up: right after CreateTopics the
    broker's metadata cache can lag the controller and still answer UNKNOWN_TOPIC_OR_PARTITION.
    """
    admin = _admin(settings)
    try:
        deadline = time.monotonic() + wait
        while True:
            (meta,) = admin.describe_topics([topic])
            if meta["error_code"] == 0 and meta["partitions"]:
                break
            if time.monotonic() > deadline:
                raise TopicError(
                    f"cannot describe topic {topic!r}: error code {meta['error_code']}"
                )
            time.sleep(0.2)
        return TopicInfo(
            partitions=len(meta["partitions"]),
            retention_ms=_topic_retention_ms(admin, topic),
        )
    finally:
        admin.close()


def ensure_topics(settings: Settings) -> dict[str, int]:
    """Create the report and target topics if missing; return ``{topic: partitions}``.

    Existing topics are accepted as they are, but a partition count different from
    ``settings.topic_partitions`` is an error: Kafka can only add partitions, and adding
    them silently would move province keys to other partitions.
    """
    topics = [settings.topic_reports, settings.topic_targets]
    admin = _admin(settings)
    try:
        for topic in topics:
            new = NewTopic(
                topic,
                num_partitions=settings.topic_partitions,
                replication_factor=1,
                topic_configs={"retention.ms": str(settings.topic_retention_ms)},
            )
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([new])
    finally:
        admin.close()
    counts = {}
    for topic in topics:
        counts[topic] = describe_topic(settings, topic)["partitions"]
        if counts[topic] != settings.topic_partitions:
            raise TopicError(
                f"topic {topic!r} has {counts[topic]} partitions, "
                f"settings expect {settings.topic_partitions}"
            )
    return counts


def main(argv: list[str] | None = None) -> int:
    """``python -m readiness.ops.topics``: create the topics of the environment's settings."""
    import argparse
    import sys

    from readiness.settings import load_settings

    argparse.ArgumentParser(prog="python -m readiness.ops.topics", description=main.__doc__).parse_args(argv)
    try:
        for topic, partitions in ensure_topics(load_settings()).items():
            print(f"topic {topic}: {partitions} partitions")
    except (TopicError, KafkaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
