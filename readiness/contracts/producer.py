"""Province-side producer: signs report events and sends them to Kafka, keyed by province code.

Production settings: ``acks=all`` and idempotence on, so a retried send is never written twice.
Every send's future is awaited at most ``Settings.publish_timeout_s`` after the last event was
queued; with the broker gone or hung, the events still unanswered then count as not acknowledged
and the client is let go instead of retrying for minutes. :class:`PublishResult` says how
many events were acknowledged and which were not (by position and, for reports, by event id), and
the CLI exits non-zero when any was not. An event not acknowledged may still have been written (the
acknowledgement was lost): resending it is safe, since it keeps its event id and the platform drops
exact re-deliveries.

Each event is signed with its province's key (:mod:`readiness.contracts.signing`) and sent over
the province's own authenticated connection (:mod:`readiness.ops.kafka_client`): a province's
machine holds one identity and one key; the local deployment, which plays every province, holds
them all and picks the province's by the event's key.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError

from readiness.contracts.encoding import REPORT_SUBMISSION, encode
from readiness.contracts.report_checks import refuse_non_finite
from readiness.contracts.signing import Signer, SigningError, signer_for
from readiness.ops.kafka_client import ADMIN, CredentialsError, kafka_python_config, province_principal
from readiness.settings import Settings

# How often the futures of sent events are looked at while waiting for their acknowledgements.
POLL_S = 0.02


@dataclass
class PublishResult:
    sent: int = 0
    acknowledged: int = 0
    failures: list[str] = field(default_factory=list)
    # Positions (in the order given) of the events not acknowledged, and, for reports, their ids.
    unacknowledged: list[int] = field(default_factory=list)
    failed_ids: list[str] = field(default_factory=list)

    @property
    def not_acknowledged(self) -> int:
        return self.sent - self.acknowledged

    def merge(self, other: "PublishResult") -> "PublishResult":
        return PublishResult(self.sent + other.sent, self.acknowledged + other.acknowledged,
                             self.failures + other.failures,
                             self.unacknowledged + [self.sent + p for p in other.unacknowledged],
                             self.failed_ids + other.failed_ids)

    @classmethod
    def none_acknowledged(cls, event_ids: list[str], reason: str) -> "PublishResult":
        """Nothing was sent (no connection): every event is to be sent again."""
        return cls(len(event_ids), 0, [reason], list(range(len(event_ids))), list(event_ids))


class PublishError(RuntimeError):
    def __init__(self, result: PublishResult) -> None:
        reasons = "; ".join(result.failures[:5])
        super().__init__(f"{result.not_acknowledged} of {result.sent} events were not acknowledged by Kafka: {reasons}")
        self.result = result


def failure_reason(exc: BaseException) -> str:
    """``KafkaTimeoutError: ...`` on one line (kafka-python's errors already start with their name)."""
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    text = text if name in text else f"{name}: {text}" if text else name
    return text if len(text) <= 200 else text[:200] + "..."


def producer_config(settings: Settings, principal: str) -> dict:
    """The producer's settings. Waiting for acknowledgements is bounded by the caller
    (``send_raw``'s timeout); here only a send() that cannot queue is bounded by the publish timeout."""
    bound_ms = max(3_000, int(settings.publish_timeout_s * 1000))
    return {
        **kafka_python_config(settings, principal),
        "acks": "all",
        "enable_idempotence": True,
        "retries": 5,
        "linger_ms": 5,
        # kafka-python guarantees idempotence only with one request in flight per connection.
        "max_in_flight_requests_per_connection": 1,
        "request_timeout_ms": 30_000,
        # Never fail an event the caller still waits for: a large file's last batches queue a while
        # behind the first ones on a healthy broker.
        "delivery_timeout_ms": max(120_000, bound_ms),
        # send() waits this long for a topic's metadata or buffer space before it raises.
        "max_block_ms": min(10_000, bound_ms // 3),
        "reconnect_backoff_max_ms": 1_000,
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

    def _principal(self, province_code: str) -> str:
        return self.settings.kafka_username or province_principal(province_code)

    def _producer_for(self, province_code: str) -> KafkaProducer:
        principal = self._principal(province_code)
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

    def send_raw(self, topic: str, items: Iterable[tuple[str, bytes]], timeout: float | None = None) -> PublishResult:
        """Sign and send (province key, value bytes) pairs; wait until each is acknowledged or failed,
        at most ``timeout`` seconds (default ``settings.publish_timeout_s``) after the last was queued.

        Once a connection cannot be opened or a send blocks past ``max_block_ms`` (no metadata, no
        buffer space), the rest of that connection's events are not tried: each would wait as long.
        So with the broker gone the whole call takes about ``timeout`` plus one ``max_block_ms``.
        """
        result = PublishResult()
        pending = []
        broken: dict[str, str] = {}  # principal -> why its connection is given up
        for position, (key, value) in enumerate(items):
            result.sent += 1
            principal = self._principal(key)
            reason = broken.get(principal)
            if reason is None:
                try:
                    producer = self._producer_for(key)
                    pending.append((position, producer.send(topic, key=key.encode("utf-8"), value=value,
                                                            headers=self._headers(key, value))))
                    continue
                except (KafkaTimeoutError, CredentialsError) as exc:
                    reason = broken[principal] = failure_reason(exc)
                except KafkaError as exc:  # refused before it was queued
                    reason = failure_reason(exc)
                    if principal not in self._producers:  # no connection: the next events would fail alike
                        broken[principal] = reason
                except SigningError as exc:
                    reason = failure_reason(exc)
            result.failures.append(reason)
            result.unacknowledged.append(position)
        _await(pending, time.monotonic() + (self.settings.publish_timeout_s if timeout is None else timeout))
        for position, future in pending:
            if future.is_done and future.succeeded():
                result.acknowledged += 1
                continue
            result.failures.append(failure_reason(future.exception) if future.is_done
                                   else "no acknowledgement before the publish timeout")
            result.unacknowledged.append(position)
        result.unacknowledged.sort()
        return result

    def publish_reports(self, reports: Iterable[dict], full_name: str = REPORT_SUBMISSION,
                        topic: str | None = None) -> PublishResult:
        """Validate and encode each report, then send it keyed by its province code.

        Nothing is sent if any record is invalid or holds a NaN or an infinity
        (:class:`~readiness.contracts.report_checks.NonFiniteNumberError`).
        """
        records = list(reports)
        for record in records:
            refuse_non_finite(record)
        encoded = [(r["province_code"], encode(r, full_name)) for r in records]
        result = self.send_raw(topic or self.settings.topic_reports, encoded)
        result.failed_ids = [str(records[p]["event_id"]) for p in result.unacknowledged]
        return result

    def close(self) -> None:
        for producer in self._producers.values():
            _close(producer)
        self._producers.clear()

    def __enter__(self) -> "ReportProducer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _await(pending: list, deadline: float) -> None:
    """Until every future is done or the deadline passes (futures complete in about send order)."""
    i = 0
    while i < len(pending):
        if pending[i][1].is_done:
            i += 1
        elif time.monotonic() >= deadline:
            return
        else:
            time.sleep(POLL_S)


def _close(producer: KafkaProducer) -> None:
    """Close without raising, also when requests are still unanswered (the broker hung or gone).

    kafka-python's close() then raises, and its forced close can fail in the I/O thread on a batch
    still in flight (a traceback on stderr). So such a producer is let go instead: it is told to stop,
    marked closed (its exit-time handler and ``__del__`` stay quiet), and its I/O thread, a daemon,
    ends with the process. Its events are already counted as not acknowledged.
    """
    try:
        producer.close(timeout=1)
    except KafkaError:
        producer._sender.initiate_close()  # noqa: SLF001 - no public way to give up on pending requests
        producer._closed = True  # noqa: SLF001


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
