"""Schema evolution, checked both ways: every pair of versions of a record must resolve in fastavro.

A version is every schema file of the registry (``schemas/*.avsc`` and ``schemas/history/**``) that
defines the record. For each ordered pair (writer, reader), records that exercise every field, every
union branch, every enum symbol and both empty and filled arrays and maps are written with the writer
and read back with ``fastavro.schemaless_reader(..., reader_schema)``. Backward compatibility is the
pair (old writer, new reader): the pipeline reads what provinces still send. Forward compatibility is
(new writer, old reader): a pipeline rolled back to its previous release, or a replay with it, reads
what provinces already send. On top of resolution, one project rule: an enum's symbols may only be
appended (one list a prefix of the other), since the wire carries the symbol's position.

The ministry runs it before publishing a version (``schemas/README.md``)::

    .venv/bin/python -m readiness.contracts.compatibility [schemas-directory]

which prints one line per pair and exits 1 when any pair is incompatible.
"""
from __future__ import annotations

import io
import itertools
import json
import re
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import parse_schema

from readiness.contracts.encoding import SCHEMAS_DIR, SchemaRegistry, schema_fingerprint, schema_paths

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
# Beyond this depth a recursive schema takes its null branch and empty arrays and maps.
MAX_DEPTH = 8
PROBLEM_LENGTH = 240
_NAME = re.compile(r"'name': '([\w.]+)'")


@dataclass(frozen=True)
class SchemaVersion:
    """One schema file: its record's full name, its raw JSON and where it lies in the registry."""

    full_name: str
    raw: dict[str, Any]
    path: Path
    current: bool

    @property
    def fingerprint(self) -> str:
        return schema_fingerprint(self.raw).hex()

    def label(self, directory: Path) -> str:
        try:
            return str(self.path.relative_to(directory))
        except ValueError:
            return str(self.path)


@dataclass(frozen=True)
class PairCheck:
    """Data written with ``writer`` read with ``reader``; ``problems`` empty when it resolves."""

    full_name: str
    writer: SchemaVersion | None
    reader: SchemaVersion | None
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


# --- sample records -------------------------------------------------------------------------------

def _qualify(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _named_types(schema: Any, namespace: str | None = None, found: dict[str, Any] | None = None) -> dict[str, Any]:
    """Full name -> definition of every record, enum and fixed in ``schema`` (Avro's namespace rules)."""
    found = {} if found is None else found
    if isinstance(schema, list):
        for branch in schema:
            _named_types(branch, namespace, found)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            full = _qualify(schema["name"], schema.get("namespace", namespace))
            found[full] = schema
            namespace = full.rpartition(".")[0] or None
        if kind in ("record", "error"):
            for f in schema.get("fields", []):
                _named_types(f["type"], namespace, found)
        elif kind == "array":
            _named_types(schema["items"], namespace, found)
        elif kind == "map":
            _named_types(schema["values"], namespace, found)
        elif isinstance(kind, (dict, list)):
            _named_types(kind, namespace, found)
    return found


class _Sampler:
    """Values of a schema in which every choice point (union, enum, boolean) takes its options in turn.

    Each choice point keeps its own counter, so an enum inside a union branch still cycles through all
    its symbols; records are drawn until every choice point met has taken each of its options.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.named = _named_types(schema)
        self.turns: dict[int, int] = {}
        self.options: dict[int, int] = {}
        self.counter = 0

    def _choose(self, point: object, options: int) -> int:
        turn = self.turns.get(id(point), 0)
        self.turns[id(point)] = turn + 1
        self.options[id(point)] = options
        return turn % options

    def covered(self) -> bool:
        return all(self.turns[point] >= options for point, options in self.options.items())

    def _resolve(self, schema: Any, namespace: str | None) -> tuple[Any, str | None]:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            full = schema if schema in self.named else _qualify(schema, namespace)
            return self.named[full], full.rpartition(".")[0] or None
        if isinstance(schema, dict) and schema.get("type") in ("record", "error", "enum", "fixed"):
            full = _qualify(schema["name"], schema.get("namespace", namespace))
            return schema, full.rpartition(".")[0] or None
        return schema, namespace

    def value(self, schema: Any, namespace: str | None = None, depth: int = 0, empty: bool = False) -> Any:
        schema, namespace = self._resolve(schema, namespace)
        shallow = empty or depth >= MAX_DEPTH
        if isinstance(schema, list):
            if shallow and "null" in schema:
                return None
            return self.value(schema[self._choose(schema, len(schema))], namespace, depth + 1, empty)
        if isinstance(schema, str):
            return self._primitive(schema, schema, None)
        kind = schema["type"]
        if isinstance(kind, (dict, list)):
            return self.value(kind, namespace, depth, empty)
        if kind in PRIMITIVES:
            return self._primitive(schema, kind, schema.get("logicalType"))
        if kind in ("record", "error"):
            return {f["name"]: self.value(f["type"], namespace, depth + 1, empty) for f in schema["fields"]}
        if kind == "enum":
            return schema["symbols"][self._choose(schema, len(schema["symbols"]))]
        if kind == "fixed":
            self.counter += 1
            return bytes((self.counter + i) % 256 for i in range(schema["size"]))
        if kind == "array":
            return [] if shallow else [self.value(schema["items"], namespace, depth + 1) for _ in range(2)]
        if kind == "map":
            return {} if shallow else {f"key{i}": self.value(schema["values"], namespace, depth + 1) for i in range(2)}
        raise ValueError(f"unknown Avro type {kind!r}")

    def _primitive(self, point: object, kind: str, logical: str | None) -> Any:
        self.counter += 1
        k = self.counter
        if kind == "null":
            return None
        if kind == "boolean":
            return self._choose(point, 2) == 0
        if kind == "int":
            return 7 + k
        if kind == "long":
            return 1_790_000_000_000 + k  # a timestamp-millis in 2026 when the type is one
        if kind == "float":
            return 1.5 + k
        if kind == "double":
            return 2.25 + k
        if kind == "bytes":
            return bytes([k % 256, 0xFF, 0x00])
        if logical == "uuid":
            return str(uuid.UUID(int=k))
        return f"sample-{k}"


def sample_records(schema: dict[str, Any], limit: int = 1000) -> list[Any]:
    """Records of ``schema`` that together exercise every field, union branch (each optional field set
    and null), enum symbol and boolean value, and arrays and maps both filled (two items) and empty."""
    sampler = _Sampler(schema)
    records = [sampler.value(schema)]
    while not sampler.covered():
        if len(records) >= limit:
            raise ValueError(f"no {limit} records of {schema.get('name')} exercise every branch and symbol")
        records.append(sampler.value(schema))
    records.append(sampler.value(schema, empty=True))
    return records


# --- checks ---------------------------------------------------------------------------------------

def _short(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    # fastavro names a named-type mismatch by printing both parsed schemas; name the two types instead.
    head, found, tail = text.partition(" is not {")
    writer_name, reader_name = _NAME.search(head), _NAME.search(tail)
    if found and writer_name and reader_name:
        text = f"{head.partition('{')[0]}{writer_name[1]} is not {reader_name[1]}"
    return text if len(text) <= PROBLEM_LENGTH else text[:PROBLEM_LENGTH - 3] + "..."


def resolution_problems(writer: dict[str, Any], reader: dict[str, Any]) -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader`` by fastavro's schema resolution
    (empty when every sample record of the writer resolves)."""
    try:
        writer_parsed, reader_parsed = parse_schema(writer), parse_schema(reader)
        samples = sample_records(writer)
    except Exception as exc:  # SchemaParseException, an unknown type name: the version is not valid Avro
        return [f"schema does not parse: {_short(exc)}"]
    problems: list[str] = []
    for record in samples:
        buffer = io.BytesIO()
        try:
            fastavro.schemaless_writer(buffer, writer_parsed, record)
        except Exception as exc:  # a sample the writer refuses is a gap in the sampler, never a pass
            problem = f"no sample could be written: {_short(exc)}"
            if problem not in problems:
                problems.append(problem)
            continue
        size = buffer.tell()
        buffer.seek(0)
        try:
            fastavro.schemaless_reader(buffer, writer_parsed, reader_parsed)
        except Exception as exc:  # SchemaResolutionError mostly; any failure is incompatibility
            problem = _short(exc)
        else:
            problem = None if buffer.tell() == size else f"{size - buffer.tell()} bytes left unread"
        if problem and problem not in problems:
            problems.append(problem)
    return problems


def _enums(schema: dict[str, Any]) -> dict[str, list[str]]:
    return {name: list(d["symbols"]) for name, d in _named_types(schema).items() if d.get("type") == "enum"}


def enum_order_problems(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The project rule resolution alone does not enforce: enum symbols are only ever appended."""
    problems = []
    enums_b = _enums(b)
    for name, symbols_a in _enums(a).items():
        symbols_b = enums_b.get(name)
        if symbols_b is None:
            continue
        shorter, longer = sorted((symbols_a, symbols_b), key=len)
        if longer[:len(shorter)] != shorter:
            problems.append(f"enum {name}: symbols {symbols_a} and {symbols_b} differ other than by appending")
    return problems


def check_pair(writer: dict[str, Any], reader: dict[str, Any]) -> list[str]:
    """Problems of reading ``writer``'s data with ``reader``: resolution, then the enum-order rule."""
    return resolution_problems(writer, reader) + enum_order_problems(writer, reader)


def check_compatible(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Problems of a new version against an old one, both ways (empty when compatible)."""
    backward = [f"backward (old writer, new reader): {p}" for p in resolution_problems(old, new)]
    forward = [f"forward (new writer, old reader): {p}" for p in resolution_problems(new, old)]
    return backward + forward + enum_order_problems(old, new)


def load_versions(directory: Path = SCHEMAS_DIR) -> dict[str, list[SchemaVersion]]:
    """Record full name -> its versions in the registry directory: history files first, the current one
    last. Files with the same content are one version."""
    current, history = schema_paths(directory)
    versions: dict[str, list[SchemaVersion]] = {}
    seen: set[str] = set()
    for path, is_current in [*((p, False) for p in history), *((p, True) for p in current)]:
        raw = json.loads(path.read_text(encoding="utf-8"))
        content = json.dumps(raw, sort_keys=True)
        if content in seen:
            continue
        seen.add(content)
        name = _qualify(raw["name"], raw.get("namespace"))
        versions.setdefault(name, []).append(SchemaVersion(name, raw, path, is_current))
    return versions


def check_directory(directory: Path = SCHEMAS_DIR) -> list[PairCheck]:
    """Every ordered pair (writer, reader) of versions of each record, a version with itself included
    (so each file is at least round-tripped); a record with history but no current version is a
    problem of its own (its messages are dead-lettered as ``no_reader_schema``)."""
    directory = Path(directory)
    try:
        SchemaRegistry(directory)  # the pipeline must be able to load the directory at all
        versions = load_versions(directory)
    except Exception as exc:
        return [PairCheck("?", None, None, (f"the registry does not load: {_short(exc)}",))]
    checks = []
    for name, kept in sorted(versions.items()):
        if not any(v.current for v in kept):
            checks.append(PairCheck(name, None, None, (
                "history versions but no current version: their messages are dead-lettered (no_reader_schema)",)))
        for writer, reader in itertools.product(kept, kept):
            checks.append(PairCheck(name, writer, reader, tuple(check_pair(writer.raw, reader.raw))))
    return checks


def describe(check: PairCheck, directory: Path = SCHEMAS_DIR) -> str:
    """One line: ``ok``/``FAIL``, the record, writer -> reader with their fingerprints, the first problem."""
    status = "ok  " if check.ok else "FAIL"
    pair = (f"{check.writer.label(directory)} [{check.writer.fingerprint}] -> "
            f"{check.reader.label(directory)} [{check.reader.fingerprint}]" if check.writer and check.reader else "-")
    line = f"{status} {check.full_name.rpartition('.')[2] or check.full_name}: {pair}"
    if check.problems:
        more = f" (+{len(check.problems) - 1} more)" if len(check.problems) > 1 else ""
        line += f": {check.problems[0]}{more}"
    return line


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else SCHEMAS_DIR
    checks = check_directory(directory)
    for check in checks:
        print(describe(check, directory))
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed} of {len(checks)} compatible" if failed else f"all {len(checks)} compatible")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
