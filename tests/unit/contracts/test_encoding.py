"""Avro single-object encoding: round trip, schema evolution, unknown fingerprints, bad bytes."""
from __future__ import annotations

import io
import json
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import avro.io
import avro.schema
import fastavro
import pytest

from readiness.contracts.encoding import (
    MARKER,
    REPORT_SUBMISSION,
    EventDecodeError,
    InvalidEventError,
    SchemaRegistry,
    decode,
    encode,
    schema_fingerprint,
)
from readiness.settings import PROJECT_ROOT

SCHEMAS = PROJECT_ROOT / "schemas"


def report(**changes) -> dict:
    base = {
        "event_id": "0b6f4a9e-2f61-4d39-9c55-2a0f8f2f6c11",
        "province_code": "38",
        "reporting_unit": {"code": "38.S02", "kind": "AGENCY", "name": "Sở Nội vụ Thanh Hóa"},
        "report_type": "QUARTERLY",
        "period": "2026Q3",
        "values": [
            {"indicator_code": "computers_per_100_staff", "numerator": 88.0, "denominator": 100.0, "value": None, "unit": None},
            {"indicator_code": "it_staff", "numerator": None, "denominator": None, "value": 4.0, "unit": "count"},
        ],
        "revision": 1,
        "submitted_at": datetime(2026, 9, 20, 16, 30, tzinfo=timezone.utc),
        "source_system": "thanhhoa-dic",
    }
    base.update(changes)
    return base


def test_round_trip_keeps_every_field():
    message = encode(report())
    record, writer = decode(message)
    assert message[:2] == MARKER
    assert writer.path.name == "report_submission.avsc"
    assert record == {**report(), "event_id": uuid.UUID("0b6f4a9e-2f61-4d39-9c55-2a0f8f2f6c11")}


def test_fingerprint_matches_the_specification_and_reference_library():
    # The Avro specification's CRC-64-AVRO value for the schema "null", written little endian.
    assert schema_fingerprint("null") == (7195948357588979594).to_bytes(8, "little")
    # The reference library agrees on the schema once logical types are dropped (it keeps
    # {"type": "string"} for them in the canonical form, where the specification says "string").
    text = (SCHEMAS / "report_submission.avsc").read_text()
    plain = json.loads(text.replace('{"type": "string", "logicalType": "uuid"}', '"string"')
                       .replace('{"type": "long", "logicalType": "timestamp-millis"}', '"long"'))
    assert schema_fingerprint(plain) == avro.schema.parse(json.dumps(plain)).fingerprint("CRC-64-AVRO")
    assert schema_fingerprint(json.loads(text)) == schema_fingerprint(plain)
    assert encode(report())[2:10] == schema_fingerprint(plain)


def test_reference_avro_library_reads_the_body():
    """The body after the 10-byte header is plain Avro binary that the reference library decodes."""
    schema = avro.schema.parse((SCHEMAS / "report_submission.avsc").read_text())
    body = encode(report())[10:]
    datum = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(body)))
    assert datum["reporting_unit"]["name"] == "Sở Nội vụ Thanh Hóa"
    assert datum["values"][1]["value"] == 4.0


def _registry_with_old_version(tmp_path: Path) -> SchemaRegistry:
    """A registry whose current schema adds a field with a default; the old one lies in history/."""
    old = json.loads((SCHEMAS / "report_submission.avsc").read_text())
    new = json.loads(json.dumps(old))
    new["fields"].append({"name": "contact_email", "type": ["null", "string"], "default": None})
    (tmp_path / "history").mkdir()
    (tmp_path / "history" / "report_submission.v1.avsc").write_text(json.dumps(old))
    (tmp_path / "report_submission.avsc").write_text(json.dumps(new))
    return SchemaRegistry(tmp_path)


def test_old_writer_resolves_to_current_reader(tmp_path):
    registry = _registry_with_old_version(tmp_path)
    old_message = encode(report())  # written with today's schema, which is "old" in tmp registry
    record, writer = decode(old_message, registry)
    assert writer.path.name == "report_submission.v1.avsc"
    assert record["contact_email"] is None
    assert record["province_code"] == "38"


def test_new_writer_is_unknown_to_an_old_registry(tmp_path):
    registry = _registry_with_old_version(tmp_path)
    new_message = encode({**report(), "contact_email": "dic@thanhhoa.gov.vn"}, REPORT_SUBMISSION, registry)
    with pytest.raises(EventDecodeError) as caught:
        decode(new_message)  # the project registry has no such writer
    assert caught.value.reason == "unknown_schema"
    assert new_message[2:10].hex() in str(caught.value)


@pytest.mark.parametrize("message, reason", [
    (b"", "empty"),
    (None, "empty"),
    (b'{"province_code": "38"}', "bad_marker"),
    (b"\xc3\x01\x00\x01", "truncated"),
    (b"\xc3\x01" + bytes(8), "unknown_schema"),
])
def test_bad_messages_raise_with_a_reason(message, reason):
    with pytest.raises(EventDecodeError) as caught:
        decode(message)
    assert caught.value.reason == reason


def test_truncated_body_is_an_error_not_a_crash():
    message = encode(report())
    with pytest.raises(EventDecodeError) as caught:
        decode(message[:-7])
    assert caught.value.reason == "truncated_or_corrupt"


def test_trailing_bytes_are_reported():
    with pytest.raises(EventDecodeError) as caught:
        decode(encode(report()) + b"\x00\x00")
    assert caught.value.reason == "trailing_bytes"


@pytest.mark.parametrize("changes, field", [
    ({"province_code": None}, "province_code"),
    ({"report_type": "MONTHLY"}, "report_type"),
    ({"reporting_unit": {"code": "1", "kind": "TOWN", "name": None}}, "kind"),
    ({"values": [{"indicator_code": "x", "numerator": "many", "denominator": None, "value": None, "unit": None}]}, "numerator"),
])
def test_encode_names_the_bad_field(changes, field):
    with pytest.raises(InvalidEventError) as caught:
        encode(report(**changes))
    assert field in caught.value.field


def test_registry_rejects_two_current_versions_of_one_record(tmp_path):
    shutil.copy(SCHEMAS / "report_submission.avsc", tmp_path / "a.avsc")
    shutil.copy(SCHEMAS / "report_submission.avsc", tmp_path / "b.avsc")
    with pytest.raises(ValueError, match="two current schemas"):
        SchemaRegistry(tmp_path)


def test_a_history_version_without_a_current_version_is_dead_lettered_not_a_key_error(tmp_path):
    """A writer the registry knows only from history/ (its current file removed or renamed) is an
    ``EventDecodeError`` the consumer dead-letters, where a ``KeyError`` would stop the ingest."""
    retired = json.loads((SCHEMAS / "report_submission.avsc").read_text())
    retired["name"] = "RetiredSubmission"
    shutil.copy(SCHEMAS / "target_plan.avsc", tmp_path / "target_plan.avsc")
    (tmp_path / "history").mkdir()
    (tmp_path / "history" / "retired_submission.v1.avsc").write_text(json.dumps(retired))
    registry = SchemaRegistry(tmp_path)
    body = io.BytesIO()
    body.write(MARKER + schema_fingerprint(retired))
    fastavro.schemaless_writer(body, fastavro.parse_schema(retired), report())
    with pytest.raises(EventDecodeError) as caught:
        decode(body.getvalue(), registry)
    assert caught.value.reason == "no_reader_schema"
    assert "retired_submission.v1.avsc" in caught.value.detail
    assert "vn.gov.readiness.v1.RetiredSubmission" in caught.value.detail
