"""Encoding: events encoded and decoded per second with the project's fastavro path
(``readiness.contracts.encoding.encode`` / ``decode``, schema validation and single-object header included)
against the reference ``avro`` library doing the same work on the same events: validate, write the
``C3 01`` + fingerprint header and the binary body; on read, check the header, look the writer schema
up by fingerprint and resolve it to the reader schema.

    python -m bench.run --only encoding [--quick]
"""
from __future__ import annotations

import io
import json
import time
from typing import Any

import avro.io
import avro.schema

from bench.common import AS_OF, SEED, median
from readiness.contracts.encoding import (
    HEADER_LENGTH,
    MARKER,
    REPORT_SUBMISSION,
    EventDecodeError,
    decode,
    default_registry,
    encode,
)
from readiness.dev.simulate import SimulationProfile, simulate


class ReferenceCodec:
    """The same single-object encoding written with the Apache ``avro`` library (pure Python)."""

    def __init__(self, full_name: str = REPORT_SUBMISSION) -> None:
        registry = default_registry()
        current = registry.current(full_name)
        self.fingerprint = current.fingerprint
        self.schema = avro.schema.parse(current.path.read_text(encoding="utf-8"))
        self.writer = avro.io.DatumWriter(self.schema)
        # Writer schemas by fingerprint (every version in the registry), resolved to the current one.
        self.readers: dict[bytes, avro.io.DatumReader] = {}
        for fp in registry.fingerprints:
            entry = registry.writer(fp)
            writer_schema = avro.schema.parse(entry.path.read_text(encoding="utf-8"))
            reader_schema = avro.schema.parse(registry.current(entry.full_name).path.read_text(encoding="utf-8"))
            self.readers[fp] = avro.io.DatumReader(writer_schema, reader_schema)

    def encode(self, record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        buffer.write(MARKER)
        buffer.write(self.fingerprint)
        self.writer.write(record, avro.io.BinaryEncoder(buffer))  # validates, then writes
        return buffer.getvalue()

    def decode(self, message: bytes) -> dict[str, Any]:
        if message[:2] != MARKER or len(message) < HEADER_LENGTH:
            raise EventDecodeError("bad_marker", "not single-object Avro")
        reader = self.readers.get(bytes(message[2:HEADER_LENGTH]))
        if reader is None:
            raise EventDecodeError("unknown_schema", message[2:HEADER_LENGTH].hex())
        body = io.BytesIO(message[HEADER_LENGTH:])
        record = reader.read(avro.io.BinaryDecoder(body))
        if body.tell() != len(message) - HEADER_LENGTH:
            raise EventDecodeError("trailing_bytes", "bytes left after the record")
        return record


def sample_reports(n: int) -> list[dict]:
    """The first ``n`` reports of the national simulation (scaled up if it has fewer)."""
    scale = 1
    while True:
        reports = simulate(SEED, AS_OF, SimulationProfile(scale=scale)).reports
        if len(reports) >= n:
            return reports[:n]
        scale = -(-n // len(reports)) if len(reports) else scale * 2


def _rate(fn, items: list) -> tuple[float, list]:
    started = time.perf_counter()
    out = [fn(x) for x in items]
    return len(items) / (time.perf_counter() - started), out


def _normal(record: dict) -> str:
    """A comparable form of a decoded record (UUID and datetime objects as text)."""
    return json.dumps(record, default=str, sort_keys=True)


def run(n_events: int = 10_000, repeats: int = 3) -> dict:
    """Median rates over ``repeats`` rounds; project and reference alternate within each round."""
    reports = sample_reports(n_events)
    reference = ReferenceCodec()
    encode(reports[0]), reference.encode(reports[0])  # warm caches (registry, parsed schemas)
    rates: dict[str, list[float]] = {"project_encode": [], "reference_encode": [],
                                     "project_decode": [], "reference_decode": []}
    project_bytes: list[bytes] = []
    reference_bytes: list[bytes] = []
    for _ in range(repeats):
        rate, project_bytes = _rate(encode, reports)
        rates["project_encode"].append(rate)
        rate, reference_bytes = _rate(reference.encode, reports)
        rates["reference_encode"].append(rate)
        rate, project_records = _rate(lambda m: decode(m)[0], project_bytes)
        rates["project_decode"].append(rate)
        rate, reference_records = _rate(reference.decode, project_bytes)
        rates["reference_decode"].append(rate)
    same_bytes = project_bytes == reference_bytes
    same_records = [_normal(r) for r in project_records] == [_normal(r) for r in reference_records]
    med = {k: median(v) for k, v in rates.items()}
    return {
        "events": len(reports),
        "repeats": repeats,
        "mean_encoded_bytes": sum(map(len, project_bytes)) / len(project_bytes),
        "identical_bytes": same_bytes,
        "identical_decoded_records": same_records,
        "rates": rates,
        "median": med,
        "ratio_encode": med["project_encode"] / med["reference_encode"],
        "ratio_decode": med["project_decode"] / med["reference_decode"],
    }


def breakdown(n_events: int = 2_000, rounds: int = 3) -> dict[str, float]:
    """Where an encode/decode spends its time, and what the project's path saves against the
    earlier one: each part alone, events/s (best of ``rounds``, the parts alternating within each
    round). Diagnostic only.

    The earlier path validated every record with fastavro's ``validate(..., raise_errors=True)``
    (which builds an error object for every union branch it tries) and parsed the schemas with
    ``_write_hint=False`` (so fastavro parsed them again on every ``schemaless_writer``/``_reader``
    call). The project now validates with ``raise_errors=False`` first and keeps the hint.
    """
    import fastavro
    from fastavro.schema import parse_schema
    from fastavro.validation import validate

    reports = sample_reports(n_events)
    schema = default_registry().current(REPORT_SUBMISSION)
    unhinted = parse_schema(json.loads(schema.path.read_text(encoding="utf-8")), _write_hint=False)
    messages = [encode(r) for r in reports]
    bodies = [m[HEADER_LENGTH:] for m in messages]

    def write(parsed):
        def f(record):
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, parsed, record)
            return buffer.getvalue()
        return f

    def read(parsed):
        return lambda body: fastavro.schemaless_reader(io.BytesIO(body), parsed, parsed)

    def earlier_encode(record):
        validate(record, unhinted, raise_errors=True)
        return write(unhinted)(record)

    parts = {
        "encode (project: validate + write)": (encode, reports),
        "encode, earlier path (raise_errors=True, unhinted schema)": (earlier_encode, reports),
        "validate, raise_errors=False (project)": (lambda r: validate(r, schema.parsed, raise_errors=False), reports),
        "validate, raise_errors=True (earlier)": (lambda r: validate(r, schema.parsed, raise_errors=True), reports),
        "schemaless_writer, hinted schema (project)": (write(schema.parsed), reports),
        "schemaless_writer, unhinted schema (earlier)": (write(unhinted), reports),
        "decode (project)": (decode, messages),
        "schemaless_reader, hinted schema (project)": (read(schema.parsed), bodies),
        "schemaless_reader, unhinted schema (earlier)": (read(unhinted), bodies),
    }
    best: dict[str, float] = {name: 0.0 for name in parts}
    for _ in range(rounds):
        for name, (fn, items) in parts.items():
            best[name] = max(best[name], _rate(fn, items)[0])
    return best
