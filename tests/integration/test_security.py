"""Only a province can report for itself: against the real broker (SASL_SSL, SCRAM, ACLs) and Spark.

One scenario is published to the test's own topics, then ingested once: every refused message is in
the dead letters with its reason, and only the province's own, validly signed reports reach bronze
and gold. Keys the test issues go to its own folder (the shared registry gets them), so the other
tests keep signing with the keys the broker fixture provisioned.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAuthorizationFailedError

from readiness.contracts.encoding import decode, encode
from readiness.contracts.producer import ReportProducer
from readiness.contracts.signing import (
    HEADER_ALGORITHM,
    HEADER_KEY_ID,
    HEADER_SIGNATURE,
    KeyRegistry,
    Signer,
    SigningError,
    signer_for,
)
from readiness.lake import store
from readiness.lake.tables import BRONZE_REPORTS, DEAD_LETTERS, GOLD_COMPLETENESS, GOLD_VALUES
from readiness.ops.kafka_client import ADMIN, PIPELINE, kafka_python_config, province_principal
from readiness.pipeline.aggregate import aggregate_period
from readiness.pipeline.ingest import ingest_reports
from readiness.pipeline.validate import validate_period
from support.forging import send, signed_headers
from support.reports import report_event

pytestmark = pytest.mark.slow

PERIOD = "2026Q3"
# Declared on 20 September 2026, before the due date; received now (after it): late all the same.
DECLARED = datetime(2026, 9, 20, 3, 0, tzinfo=timezone.utc)


def report(n: int, province: str, unit: str, numerator: float, revision: int = 0) -> dict:
    values = [{"indicator_code": "computers_per_100_staff", "numerator": numerator, "denominator": 100.0,
               "value": None, "unit": None}]
    return report_event(n, province, unit, "AGENCY", values, PERIOD, DECLARED, revision)


@dataclass
class Scenario:
    settings: object
    spark: object
    expected_dead: dict[str, str] = field(default_factory=dict)  # event id -> reason
    accepted: set[str] = field(default_factory=set)


@pytest.fixture(scope="module")
def scenario(isolated, spark, tmp_path_factory) -> Scenario:
    settings = isolated("security")
    own_keys = tmp_path_factory.mktemp("issued-keys")
    registry = KeyRegistry(settings.key_registry)
    s = Scenario(settings, spark)
    dev = settings.private_keys_dir

    def own(n, province, unit, numerator, signer, key=None, revision=0, expect=None):
        value = encode(report(n, province, unit, numerator, revision))
        meta = send(settings, province_principal(signer.province_code), key or province, value,
                    signed_headers(signer, value))
        event_id = f"00000000-0000-4000-8000-{n:012d}"
        if expect:
            s.expected_dead[event_id] = expect
        else:
            s.accepted.add(event_id)
        return meta, value

    thanh_hoa, ha_noi = signer_for("38", dev), signer_for("01", dev)
    own(1, "38", "38.S01", 60.0, thanh_hoa)                                    # its own report: accepted
    own(2, "38", "38.S02", 99.0, ha_noi, revision=9, expect="key_not_for_province")  # 01 forges 38's figures
    own(3, "38", "38.S01", 99.0, thanh_hoa, key="01", revision=9, expect="key_mismatch")

    value = encode(report(4, "38", "38.S03", 70.0))
    headers = signed_headers(thanh_hoa, value)
    flipped = bytearray(value)
    flipped[-12] ^= 0x01  # one bit of the body
    send(settings, province_principal("38"), "38", bytes(flipped), headers)
    s.expected_dead["00000000-0000-4000-8000-000000000004"] = "bad_signature"

    send(settings, province_principal("38"), "38", encode(report(5, "38", "38.S04", 70.0)), [])
    s.expected_dead["00000000-0000-4000-8000-000000000005"] = "unsigned"
    unknown = encode(report(6, "38", "38.S05", 70.0))
    send(settings, province_principal("38"), "38", unknown,
         [(HEADER_SIGNATURE, b"x" * 64), (HEADER_KEY_ID, b"p38-19990101-00000000"), (HEADER_ALGORITHM, b"ed25519")])
    s.expected_dead["00000000-0000-4000-8000-000000000006"] = "unknown_key"

    # Validity at the broker's receipt time: an expired key, a key not valid yet.
    _, path = registry.issue("26", own_keys, datetime(2020, 1, 1, tzinfo=timezone.utc), valid_days=1)
    own(7, "26", "26.S01", 50.0, Signer.from_file(path), expect="key_expired")
    _, path = registry.issue("26", own_keys, datetime(2099, 1, 1, tzinfo=timezone.utc))
    own(8, "26", "26.S02", 50.0, Signer.from_file(path), expect="key_not_yet_valid")

    # Revocation: a report received before it stays valid; one received after is refused.
    revoked_key, path = registry.issue("27", own_keys, datetime.now(timezone.utc) - timedelta(days=1))
    before, _ = own(9, "27", "27.S01", 50.0, Signer.from_file(path))
    received_before = datetime.fromtimestamp(before.timestamp / 1000, tz=timezone.utc)
    registry.revoke(revoked_key.key_id, received_before + timedelta(milliseconds=1))
    time.sleep(0.05)
    own(10, "27", "27.S02", 50.0, Signer.from_file(path), expect="key_revoked")

    # Rotation: the old key (inside its overlap) and the new key are both accepted.
    old = signer_for("30", dev)
    _, new_path = registry.rotate("30", own_keys)
    own(11, "30", "30.S01", 50.0, old)
    own(12, "30", "30.S02", 50.0, Signer.from_file(new_path))

    counts = ingest_reports(settings)
    assert counts["events_in"] == 12
    validate_period(settings, PERIOD)
    aggregate_period(settings, PERIOD)
    return s


def test_every_refused_message_is_a_dead_letter_with_its_reason(scenario):
    s = scenario
    dead = store.read(s.spark, s.settings, DEAD_LETTERS).collect()
    by_event = {}
    for row in dead:
        try:
            record, _ = decode(bytes(row["raw_value"]))
            by_event[str(record["event_id"])] = row["reason"]
        except Exception:  # the flipped message may not decode at all
            by_event["00000000-0000-4000-8000-000000000004"] = row["reason"]
        assert row["kafka_headers"] is not None or row["reason"] == "unsigned"
    assert by_event == s.expected_dead


def test_only_validly_signed_reports_of_their_own_province_reach_bronze(scenario):
    s = scenario
    bronze = store.read(s.spark, s.settings, BRONZE_REPORTS).select("event_id", "key_id", "province_code").collect()
    assert {r["event_id"] for r in bronze} == s.accepted
    assert all(r["key_id"].startswith(f"p{r['province_code']}-") for r in bronze)


def test_a_forged_report_leaves_gold_as_the_province_reported(scenario):
    s = scenario
    [row] = (store.read(s.spark, s.settings, GOLD_VALUES)
             .where(f"period_id = '{PERIOD}' AND province_code = '38' AND basis = 'as_reported' "
                    "AND indicator_code = 'computers_per_100_staff'").collect())
    assert (row["numerator_sum"], row["denominator_sum"]) == (60.0, 100.0)  # not the forged 99s


def test_a_backdated_report_received_after_the_due_date_is_late(scenario):
    s = scenario
    [row] = (store.read(s.spark, s.settings, GOLD_COMPLETENESS)
             .where(f"period_id = '{PERIOD}' AND province_code = '38' AND basis = 'as_reported'").collect())
    assert (row["received"], row["on_time"], row["late"]) == (1, 0, 1)


def test_a_wrong_password_is_refused(isolated):
    settings = isolated("security_password")
    wrong = {**kafka_python_config(settings, province_principal("38")), "sasl_plain_password": "not-the-password"}
    with pytest.raises(KafkaError):
        KafkaProducer(**wrong, api_version_auto_timeout_ms=10_000).send(settings.topic_reports, b"x").get(timeout=20)


def test_a_province_cannot_read_create_topics_or_write_elsewhere(isolated):
    settings = isolated("security_acl")
    config = kafka_python_config(settings, province_principal("38"))
    consumer = KafkaConsumer(**config, enable_auto_commit=False)
    try:
        partition = TopicPartition(settings.topic_reports, 0)
        consumer.assign([partition])
        with pytest.raises(TopicAuthorizationFailedError):
            consumer.seek_to_beginning(partition)
            consumer.poll(timeout_ms=10_000)
    finally:
        consumer.close()
    admin = KafkaAdminClient(**config)
    try:
        with pytest.raises(KafkaError):
            result = admin.create_topics([NewTopic("province-made-topic", 1, 1)])
            if any(err for _, err, *_ in getattr(result, "topic_errors", [])):
                raise KafkaError(str(result.topic_errors))
    finally:
        admin.close()
    private = "test.security.private"  # a topic the province has no ACL for
    owner = KafkaAdminClient(**kafka_python_config(settings, ADMIN))
    try:
        owner.create_topics([NewTopic(private, 1, 1)])
    finally:
        owner.close()
    producer = KafkaProducer(**config, acks="all", max_block_ms=15_000)
    try:
        with pytest.raises(KafkaError):
            producer.send(private, key=b"38", value=b"x").get(timeout=20)
    finally:
        producer.close()
    pipeline = KafkaConsumer(**kafka_python_config(settings, PIPELINE), enable_auto_commit=False)
    try:
        assert pipeline.partitions_for_topic(settings.topic_reports)  # the pipeline may describe and read
    finally:
        pipeline.close()


def test_the_producer_refuses_to_sign_another_provinces_report(isolated):
    settings = isolated("security_sign")
    key_file = sorted((settings.private_keys_dir / "01").glob("*.pem"))[-1]
    as_ha_noi = dataclasses.replace(settings, signing_key_file=str(key_file))
    with ReportProducer(as_ha_noi) as producer, pytest.raises(SigningError):
        producer.prepare(["38"])


def test_a_principal_added_on_the_running_broker_can_connect(isolated, tmp_path):
    """Later credentials come from Kafka's own ConfigCommand (the jars already fetched), not a restart."""
    from readiness.ops.broker_security import add_scram_user

    settings = isolated("security_newcomer")
    with pytest.raises(KafkaError):  # unknown to the broker before
        KafkaAdminClient(**{**kafka_python_config(settings, ADMIN), "sasl_plain_username": "newcomer"},
                         api_version_auto_timeout_ms=10_000).close()
    add_scram_user(settings, "newcomer", tmp_path)
    deadline = time.monotonic() + 30
    while True:  # the credential reaches the broker through the metadata log
        try:
            admin = KafkaAdminClient(**kafka_python_config(settings, "newcomer"), api_version_auto_timeout_ms=10_000)
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    try:
        assert settings.topic_reports not in admin.list_topics()  # authenticated, but no ACL lets it see topics
    finally:
        admin.close()
