"""Avro single-object encoding of report events, with ``schemas/`` as the schema registry.

A message is ``C3 01`` + the writer schema's 8-byte CRC-64-AVRO fingerprint (little endian, as the
Avro specification writes it) + the Avro binary body. The fingerprint names the exact writer schema,
so a reader looks it up among every schema file kept in ``schemas/`` (current versions at the top,
earlier versions under ``schemas/history/``) and resolves it to the current schema of the same record
name. Anything that cannot be decoded raises :class:`EventDecodeError` with a reason (an unknown
fingerprint, a writer whose record has no current version, a body that does not decode); the
consumer dead-letters the message and carries on. That every pair of versions resolves both ways is
checked by :mod:`readiness.contracts.compatibility`; ``schemas/README.md`` says how a version is published.
"""
from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from fastavro.validation import ValidationError, validate

from readiness.domain.periods import REPORT_TYPES
from readiness.settings import PROJECT_ROOT

MARKER = b"\xc3\x01"
HEADER_LENGTH = len(MARKER) + 8
SCHEMAS_DIR = PROJECT_ROOT / "schemas"
REPORT_SUBMISSION = "vn.gov.readiness.v1.ReportSubmission"
TARGET_PLAN = "vn.gov.readiness.v1.TargetPlan"
# The contract's ReportType enum symbol of each domain report type (``quarterly`` -> ``QUARTERLY``).
REPORT_TYPE_TO_AVRO = {report_type: report_type.upper() for report_type in REPORT_TYPES}


class EventDecodeError(ValueError):
    """A message that cannot be turned into a record; ``reason`` is a short machine-readable tag."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class InvalidEventError(ValueError):
    """A record that does not match its schema; names the offending field."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"invalid field {field!r}: {detail}")
        self.field = field


@dataclass(frozen=True)
class RegisteredSchema:
    full_name: str
    fingerprint: bytes
    parsed: dict[str, Any]
    path: Path


def schema_fingerprint(schema: dict[str, Any] | str) -> bytes:
    """CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form, as 8 bytes."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


class SchemaRegistry:
    """All schema versions found under a directory, by fingerprint, and the current one by name.

    Files directly in ``directory`` are the current versions (one per record name); files below
    ``directory/history`` are earlier writer versions that readers still accept.
    """

    def __init__(self, directory: Path = SCHEMAS_DIR) -> None:
        self.directory = directory
        self._by_fingerprint: dict[bytes, RegisteredSchema] = {}
        self._current: dict[str, RegisteredSchema] = {}
        current, history = schema_paths(directory)
        for path in current:
            entry = self._register(path)
            if entry.full_name in self._current:
                raise ValueError(f"two current schemas named {entry.full_name}: {path}")
            self._current[entry.full_name] = entry
        for path in history:
            self._register(path)

    def _register(self, path: Path) -> RegisteredSchema:
        raw = json.loads(path.read_text(encoding="utf-8"))
        # Parsed once, with fastavro's hint kept: without it every schemaless_writer/_reader call
        # parses the schema again (a measured 1.5-2.4x on encode and decode, docs/benchmarks.md).
        parsed = parse_schema(raw)
        entry = RegisteredSchema(_full_name(raw), schema_fingerprint(raw), parsed, path)
        self._by_fingerprint.setdefault(entry.fingerprint, entry)
        return entry

    def current(self, full_name: str) -> RegisteredSchema:
        try:
            return self._current[full_name]
        except KeyError:
            raise KeyError(f"no current schema named {full_name} in {self.directory}") from None

    def reader_for(self, writer: RegisteredSchema) -> RegisteredSchema:
        """The current schema a message written with ``writer`` is read as.

        A history version whose record has no current version (its current file removed or renamed)
        is a decode error, so the message is dead-lettered instead of stopping the consumer.
        """
        try:
            return self._current[writer.full_name]
        except KeyError:
            raise EventDecodeError(
                "no_reader_schema",
                f"writer schema {writer.path.name} ({writer.fingerprint.hex()}) is a version of "
                f"{writer.full_name}, which has no current schema in {self.directory}",
            ) from None

    def writer(self, fp: bytes) -> RegisteredSchema:
        try:
            return self._by_fingerprint[fp]
        except KeyError:
            raise EventDecodeError(
                "unknown_schema",
                f"writer schema fingerprint {fp.hex()} is not in the registry {self.directory}",
            ) from None

    @property
    def fingerprints(self) -> list[bytes]:
        return list(self._by_fingerprint)


def schema_paths(directory: Path = SCHEMAS_DIR) -> tuple[list[Path], list[Path]]:
    """(current version files, history files) of a registry directory, each sorted by path."""
    return sorted(directory.glob("*.avsc")), sorted(directory.glob("history/**/*.avsc"))


def _full_name(raw: dict[str, Any]) -> str:
    name = raw["name"]
    return name if "." in name or not raw.get("namespace") else f"{raw['namespace']}.{name}"


@lru_cache(maxsize=4)
def default_registry(directory: str = str(SCHEMAS_DIR)) -> SchemaRegistry:
    return SchemaRegistry(Path(directory))


def check_record(record: dict[str, Any], schema: RegisteredSchema) -> None:
    """Raise :class:`InvalidEventError` naming the first field that does not fit the schema.

    The fast check comes first: ``raise_errors=True`` builds an error object for every union
    branch tried (each nullable field), so it only runs to name the field of a record that failed.
    """
    if validate(record, schema.parsed, raise_errors=False):
        return
    try:
        validate(record, schema.parsed, raise_errors=True)
    except ValidationError as exc:
        problem = exc.errors[0] if exc.errors else None
        field = str(getattr(problem, "field", None) or "?")
        # fastavro names fields with the record's namespace; keep the part a person wrote.
        short = field.replace(f"{schema.full_name}.", "").replace("vn.gov.readiness.v1.", "")
        datum = getattr(problem, "datum", None)
        raise InvalidEventError(short, f"value {datum!r} does not fit the schema") from None


def encode(record: dict[str, Any], full_name: str = REPORT_SUBMISSION,
           registry: SchemaRegistry | None = None) -> bytes:
    """Validate ``record`` against the current schema and return its single-object encoding."""
    registry = registry or default_registry()
    schema = registry.current(full_name)
    check_record(record, schema)
    buffer = io.BytesIO()
    buffer.write(MARKER)
    buffer.write(schema.fingerprint)
    fastavro.schemaless_writer(buffer, schema.parsed, record)
    return buffer.getvalue()


def decode(message: bytes | None, registry: SchemaRegistry | None = None) -> tuple[dict[str, Any], RegisteredSchema]:
    """Decode a single-object-encoded message into a record of the current reader schema.

    Returns the record and the writer schema it was written with.
    """
    registry = registry or default_registry()
    if message is None or len(message) == 0:
        raise EventDecodeError("empty", "message has no bytes")
    if message[:2] != MARKER:
        raise EventDecodeError("bad_marker", f"expected marker c301, found {bytes(message[:2]).hex()}")
    if len(message) < HEADER_LENGTH:
        raise EventDecodeError("truncated", f"header needs {HEADER_LENGTH} bytes, message has {len(message)}")
    writer = registry.writer(bytes(message[2:HEADER_LENGTH]))
    reader = registry.reader_for(writer)
    body = io.BytesIO(message[HEADER_LENGTH:])
    try:
        record = fastavro.schemaless_reader(body, writer.parsed, reader.parsed)
    except (EOFError, IndexError, ValueError, TypeError, UnicodeDecodeError, OverflowError) as exc:
        raise EventDecodeError("truncated_or_corrupt", f"body does not decode with {writer.path.name}: {exc!r}") from None
    except Exception as exc:  # fastavro raises struct/schema-resolution errors of several types
        raise EventDecodeError("undecodable", f"{type(exc).__name__}: {exc}") from None
    remaining = len(message) - HEADER_LENGTH - body.tell()
    if remaining:
        raise EventDecodeError("trailing_bytes", f"{remaining} bytes left after the record")
    return record, writer


def to_plain(value: Any) -> Any:
    """Turn decoded Avro values (UUID, datetime) into JSON-friendly ones, recursively."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value
    return value


def encode_many(records: Iterable[dict[str, Any]], full_name: str = REPORT_SUBMISSION) -> list[bytes]:
    return [encode(r, full_name) for r in records]
