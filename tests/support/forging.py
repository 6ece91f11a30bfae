"""Messages as a forger would send them: bytes signed with whatever key one holds, sent over one's own
authenticated connection, bypassing the producer's own signing."""
from __future__ import annotations

from kafka import KafkaProducer

from readiness.contracts.signing import ALGORITHM, HEADER_ALGORITHM, HEADER_KEY_ID, HEADER_SIGNATURE, Signer
from readiness.ops.kafka_client import kafka_python_config


def signed_headers(signer: Signer, value: bytes) -> list[tuple[str, bytes]]:
    """The headers a key produces for these bytes, whoever's report they are (a forger's view)."""
    return [(HEADER_SIGNATURE, signer._key.sign(value)), (HEADER_KEY_ID, signer.key_id.encode()),
            (HEADER_ALGORITHM, ALGORITHM.encode())]


def send(settings, principal: str, key: str, value: bytes, headers: list[tuple[str, bytes]]):
    """Send one message as ``principal`` to the reports topic; its record metadata once acknowledged."""
    producer = KafkaProducer(**kafka_python_config(settings, principal), acks="all")
    try:
        return producer.send(settings.topic_reports, key=key.encode(), value=value, headers=headers).get(timeout=30)
    finally:
        producer.close()
