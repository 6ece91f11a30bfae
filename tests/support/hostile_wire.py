"""A corpus of hostile messages on the wire, for the ingest's "no message can stop it" property.

Each case is what a broken or hostile province system could put on the reports topic: random
bytes, bit flips, truncations and extensions of a valid event, unknown fingerprints, empty values,
a 900 KB value, control characters and over-long strings in every string field, periods that are
not period ids. Most are signed with the province's own key, so they get past the signature check
and test the decoder and the contract's bounds; the signature cases (unsigned, a wrong signature,
a Kafka key that disagrees with the body) are sent as they would arrive.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from readiness.contracts.encoding import HEADER_LENGTH, MARKER, TARGET_PLAN, encode
from readiness.contracts.limits import STRING_LIMITS

T0 = datetime(2026, 10, 5, 8, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class WireCase:
    kind: str          # the corpus class, for the counts by class
    value: bytes | None
    key: str = "38"    # the Kafka key (the province whose connection and key send it)
    sign: bool = True  # signed by the key's province


def base_report(n: int) -> dict:
    return {"event_id": f"00000000-0000-4000-a000-{n:012d}", "province_code": "38",
            "reporting_unit": {"code": "38", "kind": "PROVINCE", "name": "Thanh Hóa"},
            "report_type": "QUARTERLY", "period": "2026Q3",
            "values": [{"indicator_code": "computers_per_100_staff", "numerator": 90.0, "denominator": 100.0,
                        "value": None, "unit": None}],
            "revision": 0, "submitted_at": T0, "source_system": "hostile-corpus"}


def _with(record: dict, field: str, text: str) -> dict:
    """``record`` with the dotted string field set to ``text``."""
    changed = {**record, "reporting_unit": dict(record["reporting_unit"]),
               "values": [dict(v) for v in record["values"]]}
    head, _, tail = field.partition(".")
    if not tail:
        changed[head] = text
    elif head == "reporting_unit":
        changed["reporting_unit"][tail] = text
    else:
        changed["values"][0][tail] = text
    return changed


REPORT_STRING_FIELDS = ("province_code", "period", "source_system", "reporting_unit.code", "reporting_unit.name",
                        "values.indicator_code", "values.unit")


def wire_corpus(seed: int = 7) -> Iterator[WireCase]:
    """At least 1,000 hostile messages, deterministic for a seed."""
    rng = random.Random(seed)
    ids = iter(range(1, 1_000_000))
    valid = [encode(base_report(next(ids))) for _ in range(50)]
    for _ in range(250):
        yield WireCase("random_bytes", bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 600))))
    for _ in range(300):
        flipped = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(flipped))
            flipped[position] ^= 1 << rng.randrange(8)
        yield WireCase("bit_flip", bytes(flipped))
    for _ in range(150):
        original = rng.choice(valid)
        yield WireCase("truncated", original[:rng.randrange(1, len(original))])  # b"" is the empty class
    for _ in range(80):
        yield WireCase("extended", rng.choice(valid) + bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))))
    for _ in range(80):
        body = rng.choice(valid)[HEADER_LENGTH:]
        yield WireCase("unknown_fingerprint", MARKER + bytes(rng.getrandbits(8) for _ in range(8)) + body)
    for _ in range(10):
        yield WireCase("empty", b"")
        yield WireCase("null", None, sign=False)
    yield WireCase("huge_value", encode(_with(base_report(next(ids)), "reporting_unit.name", "x" * 900_000)))
    controls = [chr(c) for c in (*range(0x00, 0x20), 0x7F)]
    for field in REPORT_STRING_FIELDS:
        for char in rng.sample(controls, 12):
            yield WireCase("control_character", encode(_with(base_report(next(ids)), field, f"a{char}b")))
        for length in (STRING_LIMITS[field] + 1, 2 * STRING_LIMITS[field], 131_073):
            yield WireCase("over_long_string", encode(_with(base_report(next(ids)), field, "7" * length)))
    for period in ("2026Q5", "2026S3", "26Q3", "2026-Q3", "../2026Q3", "2026Q3 ", "２０２６Q3", "", "NaN", "2026q3"):
        yield WireCase("bad_period", encode(_with(base_report(next(ids)), "period", period)))
    plan = {"event_id": "00000000-0000-4000-b000-000000000001", "province_code": "38", "plan_year": 2026,
            "plan_reference": "x\x00" * 10, "targets": [], "revision": 0, "submitted_at": T0, "source_system": "t"}
    yield WireCase("control_character", encode(plan, TARGET_PLAN))
    for _ in range(20):
        yield WireCase("unsigned", encode(base_report(next(ids))), sign=False)
    for _ in range(20):  # the body is province 38's, sent and signed as province 01
        yield WireCase("key_disagrees_with_body", encode(base_report(next(ids))), key="01")


def send_corpus(settings, cases: list[WireCase]) -> int:
    """Send every case to the reports topic as its province's system would; returns the count acknowledged."""
    from readiness.contracts.producer import ReportProducer

    acknowledged = 0
    for sign in (True, False):
        items = [(c.key, c.value) for c in cases if c.sign == sign]
        with ReportProducer(settings, sign=sign) as producer:
            result = producer.send_raw(settings.topic_reports, items)
        assert result.not_acknowledged == 0, result.failures[:5]
        acknowledged += result.acknowledged
    return acknowledged
