"""Province-side producer: signs report events and sends them to Kafka, keyed by province code.

Production settings: ``acks=all`` and idempotence on, so a retried send is never written twice.
Every send's future is checked after the final flush; :class:`PublishResult` says how many events
were acknowledged and which were not, and the CLI exits non-zero when any was not.

Each event is signed with its province's key (:mod:`readiness.contracts.signing`) and sent over
the province's own authenticated connection (:mod:`readiness.ops.kafka_client`): a province's
machine holds one identity and one key; the local deployment, which plays every province, holds
them all and picks the province's by the event's key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from readiness.contracts.encoding import REPORT_SUBMISSION, encode
from readiness.contracts.signing import Signer, SigningError, signer_for
from readiness.ops.kafka_client import ADMIN, CredentialsError, kafka_python_config, province_principal
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


def producer_config(settings: Settings, principal: str) -> dict:
    return {
        **kafka_python_config(settings, principal),
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
    """Signs and sends encoded events and keeps every future so no failure goes unnoticed.

    ``sign=False`` sends without signature headers (for tests of the ingest's refusals only).
    """

    def __init__(self, settings: Settings, sign: bool = True, **overrides: object) -> None:
        self.settings = settings
        self.sign = sign
        self._overrides = overrides
        self._producers: dict[str, KafkaProducer] = {}
        self._signers: dict[str, Signer] = {}

    def _producer_for(self, province_code: str) -> KafkaProducer:
        principal = self.settings.kafka_username or province_principal(province_code)
        if principal not in self._producers:
            self._producers[principal] = KafkaProducer(**{**producer_config(self.settings, principal),
                                                          **self._overrides})
        return self._producers[principal]

    def _signer_for(self, province_code: str) -> Signer:
        if province_code not in self._signers:
            key_file = Path(self.settings.signing_key_file) if self.settings.signing_key_file else None
            self._signers[province_code] = signer_for(province_code, self.settings.private_keys_dir, key_file)
        return self._signers[province_code]

    def _headers(self, province_code: str, value: bytes) -> list[tuple[str, bytes]]:
        return self._signer_for(province_code).headers(province_code, value) if self.sign else []

    def prepare(self, province_codes: Iterable[str]) -> None:
        """Find each province's signing key and open its connection before anything is sent.

        Raises :class:`SigningError` (no key, or another province's), :class:`CredentialsError`
        or the client's ``KafkaError`` (no broker answered).
        """
        for code in sorted(set(province_codes)):
            if self.sign:
                self._signer_for(code)
            self._producer_for(code)

    def send_raw(self, topic: str, items: Iterable[tuple[str, bytes]], timeout: float = 60.0) -> PublishResult:
        """Sign and send (province key, value bytes) pairs; wait until each is acknowledged or failed."""
        futures = []
        result = PublishResult()
        for key, value in items:
            result.sent += 1
            try:
                producer = self._producer_for(key)
                futures.append(producer.send(topic, key=key.encode("utf-8"), value=value,
                                             headers=self._headers(key, value)))
            except (KafkaError, CredentialsError, SigningError) as exc:  # refused before it was queued
                result.failures.append(f"key {key}: {exc!r}")
        for producer in self._producers.values():
            producer.flush(timeout=timeout)
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
        for producer in self._producers.values():
            producer.close(timeout=10)
        self._producers.clear()

    def __enter__(self) -> "ReportProducer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def topic_message_count(settings: Settings, topic: str | None = None) -> int:
    """Messages currently on a topic (sum over partitions of end minus beginning offsets)."""
    topic = topic or settings.topic_reports
    consumer = KafkaConsumer(**kafka_python_config(settings, ADMIN), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            return 0
        end = consumer.end_offsets(partitions)
        begin = consumer.beginning_offsets(partitions)
        return sum(end[tp] - begin[tp] for tp in partitions)
    finally:
        consumer.close()
