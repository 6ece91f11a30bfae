"""Kafka topic administration as production uses it: the admin client, the broker check, topics, ACLs.

The report and target topics are created explicitly, with the partition count and retention the
settings name (automatic topic creation is off on every broker the project runs), and with
``message.timestamp.type=LogAppendTime``: a record's timestamp is the broker's receipt time,
which decides timeliness, whatever the producer wrote.

ACLs (:func:`ensure_acls`): a province may write (idempotently) to the report and target topics
and nothing else; it cannot read them, create topics or use consumer groups. The pipeline may
read and describe both topics and use the groups under its prefix.
"""
from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import time
from typing import TypedDict

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ConfigResource,
    ConfigResourceType,
    NewTopic,
    ResourcePattern,
    ResourceType,
)
from kafka.errors import KafkaError, TopicAlreadyExistsError

from readiness.ops.broker_security import deployment_principals
from readiness.ops.kafka_client import ADMIN, PIPELINE, PIPELINE_GROUP_PREFIX, CredentialsError, kafka_python_config
from readiness.settings import Settings, load_settings


class TopicError(RuntimeError):
    """A topic could not be described, or exists with other partitions than the settings say."""


def split_bootstrap(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"kafka_bootstrap must be 'host:port', got {bootstrap!r}")
    return host, int(port)


def _admin(settings: Settings, timeout_ms: int = 10_000) -> KafkaAdminClient:
    return KafkaAdminClient(**kafka_python_config(settings, ADMIN), client_id="readiness-admin",
                            request_timeout_ms=timeout_ms)


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
    except (KafkaError, CredentialsError):  # not reachable, or not ours to authenticate to
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
                topic_configs={"retention.ms": str(settings.topic_retention_ms),
                               "message.timestamp.type": "LogAppendTime"},
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
    if settings.kafka_security_protocol.startswith("SASL"):  # (a PLAINTEXT benchmark baseline has no authorizer)
        ensure_acls(settings, province_principals())
    return counts


def _allow(principal: str, operation: ACLOperation, resource: ResourcePattern) -> ACL:
    return ACL(principal=f"User:{principal}", host="*", operation=operation,
               permission_type=ACLPermissionType.ALLOW, resource_pattern=resource)


def required_acls(settings: Settings, province_principals: list[str]) -> list[ACL]:
    """The ACLs of the deployment: each province writes the two topics, the pipeline reads them."""
    topics = [ResourcePattern(ResourceType.TOPIC, t, ACLResourcePatternType.LITERAL)
              for t in (settings.topic_reports, settings.topic_targets)]
    cluster = ResourcePattern(ResourceType.CLUSTER, "kafka-cluster", ACLResourcePatternType.LITERAL)
    group = ResourcePattern(ResourceType.GROUP, PIPELINE_GROUP_PREFIX, ACLResourcePatternType.PREFIXED)
    acls = []
    for principal in province_principals:
        acls += [_allow(principal, op, t) for t in topics for op in (ACLOperation.WRITE, ACLOperation.DESCRIBE)]
        acls.append(_allow(principal, ACLOperation.IDEMPOTENT_WRITE, cluster))
    acls += [_allow(PIPELINE, op, t) for t in topics for op in (ACLOperation.READ, ACLOperation.DESCRIBE)]
    acls.append(_allow(PIPELINE, ACLOperation.READ, group))
    return acls


def province_principals() -> list[str]:
    return [p for p in deployment_principals() if p != PIPELINE]


def ensure_acls(settings: Settings, province_principals: list[str]) -> int:
    """Create the deployment's ACLs (creating an existing ACL is a no-op); returns how many."""
    acls = required_acls(settings, province_principals)
    admin = _admin(settings)
    try:
        result = admin.create_acls(acls)
    finally:
        admin.close()
    failed = result.get("failed") or []
    if failed:
        raise TopicError(f"{len(failed)} ACLs could not be created, e.g. {failed[0]}")
    return len(acls)


def main(argv: list[str] | None = None) -> int:
    """``python -m readiness.ops.topics``: create the topics of the environment's settings."""
    argparse.ArgumentParser(prog="python -m readiness.ops.topics", description=main.__doc__).parse_args(argv)
    settings = load_settings()
    try:
        for topic, partitions in ensure_topics(settings).items():
            print(f"topic {topic}: {partitions} partitions")
        print(f"ACLs: the pipeline reads, {len(province_principals())} province principals write")
    except (TopicError, KafkaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
