"""Province-side producer: sends report events to Kafka, keyed by province code.

Production settings: ``acks=all`` and idempotence on, so a retried send is never written twice.
Every send's future is checked after the final flush; :class:`PublishResult` says how many events
were acknowledged and which were not, and the CLI exits non-zero when any was not.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from readiness.contracts.encoding import REPORT_SUBMISSION, encode
from readiness.settings import Settings


@dataclass
class PublishResult:
    sent: int = 0
    acknowledged: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def not_acknowledged(self) -> int:
        return self.sent - self.acknowledged

    def merge(self, other: "PublishResult") -> "PublishResult":
        return PublishResult(self.sent + other.sent, self.acknowledged + other.acknowledged,
                             self.failures + other.failures)


class PublishError(RuntimeError):
    def __init__(self, result: PublishResult) -> None:
        reasons = "; ".join(result.failures[:5])
        super().__init__(f"{result.not_acknowledged} of {result.sent} events were not acknowledged by Kafka: {reasons}")
        self.result = result


def producer_config(settings: Settings) -> dict:
    return {
        "bootstrap_servers": settings.kafka_bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "retries": 5,
        "linger_ms": 5,
        # kafka-python guarantees idempotence only with one request in flight per connection.
        "max_in_flight_requests_per_connection": 1,
        "request_timeout_ms": 30_000,
        "client_id": "readiness-producer",
    }


class ReportProducer:
    """Sends encoded events and keeps every future so no failure goes unnoticed."""

    def __init__(self, settings: Settings, **overrides: object) -> None:
        self.settings = settings
        self._producer = KafkaProducer(**{**producer_config(settings), **overrides})

    def send_raw(self, topic: str, items: Iterable[tuple[str, bytes]], timeout: float = 60.0) -> PublishResult:
        """Send (key, value bytes) pairs and wait until each is acknowledged or failed."""
        futures = []
        result = PublishResult()
        for key, value in items:
            result.sent += 1
            try:
                futures.append(self._producer.send(topic, key=key.encode("utf-8"), value=value))
            except KafkaError as exc:  # refused before it was queued
                result.failures.append(f"key {key}: {exc!r}")
        self._producer.flush(timeout=timeout)
        for future in futures:
            if future.succeeded():
                result.acknowledged += 1
            else:
                result.failures.append(repr(future.exception) if future.is_done else "no answer before timeout")
        return result

    def publish_reports(self, reports: Iterable[dict], full_name: str = REPORT_SUBMISSION,
                        topic: str | None = None) -> PublishResult:
        """Validate and encode each report, then send it keyed by its province code."""
        encoded = [(r["province_code"], encode(r, full_name)) for r in reports]
        return self.send_raw(topic or self.settings.topic_reports, encoded)

    def close(self) -> None:
        self._producer.close(timeout=10)

    def __enter__(self) -> "ReportProducer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def topic_message_count(settings: Settings, topic: str | None = None) -> int:
    """Messages currently on a topic (sum over partitions of end minus beginning offsets)."""
    topic = topic or settings.topic_reports
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            return 0
        end = consumer.end_offsets(partitions)
        begin = consumer.beginning_offsets(partitions)
        return sum(end[tp] - begin[tp] for tp in partitions)
    finally:
        consumer.close()
