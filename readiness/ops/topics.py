"""Kafka topic administration as production uses it: the admin client, the broker check, topics, ACLs.

The report and target topics are created explicitly, with the partition count and retention the
settings name (automatic topic creation is off on every broker the project runs), and with
``message.timestamp.type=LogAppendTime``: a record's timestamp is the broker's receipt time,
which decides timeliness, whatever the producer wrote. Each has ``settings.kafka_replication_factor``
replicas, ``min.insync.replicas`` from the settings (with the producers' ``acks=all``, a write is
acknowledged once that many replicas have it) and unclean leader election off.

ACLs (:func:`ensure_acls`): a province may write (idempotently) to the report and target topics
and nothing else; it cannot read them, create topics or use consumer groups. The pipeline may
read and describe both topics and use the groups under its prefix.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
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
    """``(host, port)`` of one broker address; a list is split first (``settings.kafka_brokers``)."""
    host, _, port = bootstrap.strip().rpartition(":")
    if not host or not port.isdigit() or "," in bootstrap:
        raise ValueError(f"a broker address must be 'host:port', got {bootstrap!r}")
    return host, int(port)


def broker_addresses(settings: Settings) -> list[tuple[str, int]]:
    """``(host, port)`` of every broker of the bootstrap list, in node-id order."""
    return [split_bootstrap(address) for address in settings.kafka_brokers]


def _admin(settings: Settings, timeout_ms: int = 10_000) -> KafkaAdminClient:
    return KafkaAdminClient(**kafka_python_config(settings, ADMIN), client_id="readiness-admin",
                            request_timeout_ms=timeout_ms)


def _reachable(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1.0).close()
    except OSError:
        return False
    return True


def _alive_brokers(settings: Settings, timeout_ms: int) -> set[int] | None:
    try:
        admin = _admin(settings, timeout_ms=timeout_ms)
    except (KafkaError, CredentialsError):  # not reachable, or not ours to authenticate to
        return None
    try:
        return {int(b["node_id"]) for b in admin.describe_cluster().get("brokers") or []}
    except KafkaError:
        return None
    finally:
        admin.close()


def registered_brokers(settings: Settings, timeout_ms: int = 3_000) -> set[int] | None:
    """Node ids of the brokers the cluster lists as alive (registered, not fenced), as the first
    broker of ``settings.kafka_bootstrap`` that answers reports them; None if none answers.

    One address at a time (a client given the whole list can give up on a dead one), each behind
    a plain TCP connect, which keeps the common "nothing there" case fast and free of kafka-python
    connection-error logging.
    """
    for address in settings.kafka_brokers:
        if _reachable(split_bootstrap(address)):
            alive = _alive_brokers(dataclasses.replace(settings, kafka_bootstrap=address), timeout_ms)
            if alive is not None:
                return alive
    return None


def broker_answers(settings: Settings, node_id: int | None = None) -> bool:
    """True if a Kafka broker answers a metadata request on ``settings.kafka_bootstrap``; with
    ``node_id``, if that node answers on its own address and is registered with the cluster."""
    if node_id is None:
        return bool(registered_brokers(settings))
    brokers = settings.kafka_brokers
    if not 1 <= node_id <= len(brokers):
        return False
    alive = registered_brokers(dataclasses.replace(settings, kafka_bootstrap=brokers[node_id - 1]))
    return alive is not None and node_id in alive


def _topic_configs(admin: KafkaAdminClient, topic: str, names: list[str]) -> dict[str, str]:
    """The effective values of a topic's configs (its own, else the broker's defaults)."""
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs=dict.fromkeys(names))
    found: dict[str, str] = {}
    for response in admin.describe_configs([resource]):
        for _err, _msg, _type, _name, entries in response.resources:
            found.update({entry[0]: entry[1] for entry in entries if entry[0] in names})
    return found


def _topic_retention_ms(admin: KafkaAdminClient, topic: str) -> int | None:
    value = _topic_configs(admin, topic, ["retention.ms"]).get("retention.ms")
    return None if value is None else int(value)


def topic_configs(settings: Settings, topic: str, names: list[str]) -> dict[str, str]:
    """``name -> value`` of a topic's effective configs as the brokers report them."""
    admin = _admin(settings)
    try:
        return _topic_configs(admin, topic, names)
    finally:
        admin.close()


class TopicInfo(TypedDict):
    partitions: int
    retention_ms: int | None


class PartitionReplicas(TypedDict):
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]


def _topic_metadata(admin: KafkaAdminClient, topic: str, wait: float) -> dict:
    """The topic's metadata, waiting up to ``wait`` seconds for the topic to show up: right after
    CreateTopics a broker's metadata cache can lag the controller and still answer
    UNKNOWN_TOPIC_OR_PARTITION."""
    deadline = time.monotonic() + wait
    while True:
        (meta,) = admin.describe_topics([topic])
        if meta["error_code"] == 0 and meta["partitions"]:
            return meta
        if time.monotonic() > deadline:
            raise TopicError(f"cannot describe topic {topic!r}: error code {meta['error_code']}")
        time.sleep(0.2)


def describe_topic(settings: Settings, topic: str, wait: float = 15.0) -> TopicInfo:
    """Partition count and ``retention.ms`` of ``topic`` as the broker reports them."""
    admin = _admin(settings)
    try:
        meta = _topic_metadata(admin, topic, wait)
        return TopicInfo(
            partitions=len(meta["partitions"]),
            retention_ms=_topic_retention_ms(admin, topic),
        )
    finally:
        admin.close()


def describe_replicas(settings: Settings, topic: str, wait: float = 15.0) -> list[PartitionReplicas]:
    """Leader, replicas and in-sync replicas of every partition of ``topic``, by partition."""
    admin = _admin(settings)
    try:
        meta = _topic_metadata(admin, topic, wait)
    finally:
        admin.close()
    return sorted((PartitionReplicas(partition=p["partition"], leader=p["leader"], replicas=list(p["replicas"]),
                                     isr=list(p["isr"])) for p in meta["partitions"]),
                  key=lambda p: p["partition"])


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
                replication_factor=settings.kafka_replication_factor,
                topic_configs={"retention.ms": str(settings.topic_retention_ms),
                               "message.timestamp.type": "LogAppendTime",
                               "min.insync.replicas": str(settings.kafka_min_insync_replicas),
                               "unclean.leader.election.enable": "false"},
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
    """``python -m readiness.ops.topics``: create the topics of the environment's settings (and their
    ACLs); ``--check-node N``: only say (exit 0 or 1) whether node N answers and is registered, the
    health check of a broker of ``docker/``."""
    parser = argparse.ArgumentParser(prog="python -m readiness.ops.topics", description=main.__doc__)
    parser.add_argument("--check-node", type=int, metavar="N", help="exit 0 if node N answers, else 1")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.check_node is not None:
        return 0 if broker_answers(settings, node_id=args.check_node) else 1
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
