"""Schema evolution both ways: every pair of versions in ``schemas/`` resolves in fastavro, and the
checker the ministry runs before publishing a version tells a compatible change from a breaking one."""
from __future__ import annotations

import copy
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import fastavro
import pytest

from readiness.contracts.compatibility import (
    check_compatible,
    check_directory,
    check_pair,
    describe,
    enum_order_problems,
    load_versions,
    main,
    resolution_problems,
    sample_records,
)
from readiness.contracts.encoding import (
    MARKER,
    REPORT_SUBMISSION,
    TARGET_PLAN,
    SchemaRegistry,
    decode,
    encode,
    schema_fingerprint,
    schema_paths,
)
from readiness.settings import PROJECT_ROOT

SCHEMAS = PROJECT_ROOT / "schemas"
REPORT = json.loads((SCHEMAS / "report_submission.avsc").read_text(encoding="utf-8"))
TARGETS = json.loads((SCHEMAS / "target_plan.avsc").read_text(encoding="utf-8"))


# --- the project's own schemas ----------------------------------------------------------------------

PROJECT_PAIRS = check_directory(SCHEMAS)


@pytest.mark.parametrize("check", PROJECT_PAIRS, ids=lambda c: describe(c, SCHEMAS).split(": ", 1)[1][:120])
def test_every_pair_of_versions_in_schemas_resolves_both_ways(check):
    assert check.ok, describe(check, SCHEMAS)


def test_the_pairs_cover_every_schema_file_as_writer_and_as_reader():
    versions = load_versions(SCHEMAS)
    assert {REPORT_SUBMISSION, TARGET_PLAN} <= set(versions)
    assert len(PROJECT_PAIRS) == sum(len(kept) ** 2 for kept in versions.values())
    current, history = schema_paths(SCHEMAS)
    files = {json.dumps(json.loads(p.read_text(encoding="utf-8")), sort_keys=True): p for p in current + history}
    assert {c.writer.path for c in PROJECT_PAIRS} == set(files.values())
    assert {c.reader.path for c in PROJECT_PAIRS} == set(files.values())
    assert all(any(v.current for v in kept) for kept in versions.values())


def test_the_command_prints_one_line_per_pair_and_exits_0(capsys):
    assert main([str(SCHEMAS)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(PROJECT_PAIRS) + 1
    assert all(line.startswith("ok   ") for line in lines[:-1])
    assert lines[-1] == f"all {len(PROJECT_PAIRS)} compatible"


# --- the sample records exercise every field ----------------------------------------------------------

def test_report_samples_exercise_every_field_branch_and_symbol():
    samples = sample_records(REPORT)
    for record in samples:
        assert fastavro.validate(record, fastavro.parse_schema(REPORT))
    assert {r["reporting_unit"]["kind"] for r in samples} == {"AGENCY", "COMMUNE", "DISTRICT", "PROVINCE"}
    assert {r["report_type"] for r in samples} == {"QUARTERLY", "SIX_MONTHLY", "YEARLY"}
    assert {r["reporting_unit"]["name"] is None for r in samples} == {True, False}
    values = [v for r in samples for v in r["values"]]
    for name in ("numerator", "denominator", "value", "unit"):
        assert {v[name] is None for v in values} == {True, False}, name
    assert {len(r["values"]) for r in samples} == {0, 2}
    assert all(set(r) == {f["name"] for f in REPORT["fields"]} for r in samples)


def test_target_samples_exercise_every_symbol_and_optional_field():
    samples = sample_records(TARGETS)
    assert {t["comparison"] for r in samples for t in r["targets"]} == {"AT_LEAST", "AT_MOST"}
    assert {r["plan_reference"] is None for r in samples} == {True, False}


def test_samples_reach_an_enum_inside_a_union_branch_and_a_recursive_record():
    schema = {"type": "record", "name": "Node", "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "tag", "type": ["null", {"type": "enum", "name": "Tag", "symbols": ["A", "B", "C", "D", "E"]}]},
        {"name": "children", "type": {"type": "array", "items": "Node"}},
        {"name": "extra", "type": {"type": "map", "values": ["null", "long", "string"]}},
    ]}
    samples = sample_records(schema)

    def nodes(node):
        yield node
        for child in node["children"]:
            yield from nodes(child)

    everything = [n for r in samples for n in nodes(r)]
    assert any(r["children"] for r in samples) and any(not r["children"] for r in samples)
    assert {n["tag"] for n in everything} == {None, "A", "B", "C", "D", "E"}
    assert {n["flag"] for n in everything} == {True, False}
    assert {type(v) for n in everything for v in n["extra"].values()} == {type(None), int, str}
    assert resolution_problems(schema, schema) == []


# --- the checker tells compatible changes from breaking ones ------------------------------------------

def _evolve(change) -> dict:
    new = copy.deepcopy(REPORT)
    change(new)
    return new


def _field(schema: dict, name: str, record: dict | None = None) -> dict:
    fields = (record or schema)["fields"]
    return next(f for f in fields if f["name"] == name)


def _unit(schema: dict) -> dict:
    return _field(schema, "reporting_unit")["type"]


def _value_record(schema: dict) -> dict:
    return _field(schema, "values")["type"]["items"]


COMPATIBLE = {
    "optional field with a default": lambda s: s["fields"].append(
        {"name": "contact_email", "type": ["null", "string"], "default": None}),
    "defaulted int field": lambda s: s["fields"].append({"name": "attachments", "type": "int", "default": 0}),
    "optional field in a nested record": lambda s: _value_record(s)["fields"].append(
        {"name": "note", "type": ["null", "string"], "default": None}),
    "a field that had a default removed": lambda s: _unit(s)["fields"].pop(),  # reporting_unit.name
    "docs changed": lambda s: s.update(doc="Reworded."),
    "fields reordered": lambda s: s["fields"].reverse(),
}

BREAKING = {
    "new field without a default": (
        lambda s: s["fields"].append({"name": "contact_email", "type": "string"}), "backward"),
    "field without a default removed": (
        lambda s: s["fields"].remove(_field(s, "source_system")), "forward"),
    "field type changed": (lambda s: _field(s, "period").update(type="int"), "backward"),
    "int promoted to long": (lambda s: _field(s, "revision").update(type="long"), "forward"),
    "optional made required": (
        lambda s: (_field(s, "numerator", _value_record(s)).update(type="double"),
                   _field(s, "numerator", _value_record(s)).pop("default")), "backward"),
    "enum symbol added": (lambda s: _field(s, "kind", _unit(s))["type"]["symbols"].append("WARD"), "forward"),
    "enum symbol removed": (lambda s: _field(s, "report_type")["type"]["symbols"].remove("YEARLY"), "backward"),
    "record renamed": (lambda s: s.update(name="ReportSubmitted"), "backward"),
    "nested record renamed": (lambda s: _unit(s).update(name="Unit"), "backward"),
}


@pytest.mark.parametrize("name", list(COMPATIBLE))
def test_compatible_changes_pass_both_ways(name):
    new = _evolve(COMPATIBLE[name])
    assert new != REPORT
    assert check_compatible(REPORT, new) == []
    assert check_compatible(new, REPORT) == []


@pytest.mark.parametrize("name", list(BREAKING))
def test_breaking_changes_are_caught_in_the_direction_they_break(name):
    change, direction = BREAKING[name]
    problems = check_compatible(REPORT, _evolve(change))
    assert problems, f"{name} passed the checker"
    assert any(p.startswith(direction) for p in problems), problems


def test_reordered_enum_symbols_resolve_but_break_the_append_only_rule():
    """Resolution matches symbols by name, so only the project rule sees the wire positions move."""
    new = _evolve(lambda s: _field(s, "report_type")["type"]["symbols"].reverse())
    assert resolution_problems(REPORT, new) == [] and resolution_problems(new, REPORT) == []
    assert enum_order_problems(REPORT, new)
    assert any("ReportType" in p for p in check_compatible(REPORT, new))
    assert check_pair(REPORT, new)


def test_an_enum_default_makes_a_new_symbol_readable_by_the_old_reader():
    with_default = _evolve(lambda s: _field(s, "kind", _unit(s))["type"].update(default="AGENCY"))
    added = copy.deepcopy(with_default)
    _field(added, "kind", _unit(added))["type"]["symbols"].append("WARD")
    assert check_compatible(with_default, added) == []
    assert check_compatible(REPORT, added)  # the version without the default still cannot read WARD


# --- a registry directory laid out as the ministry publishes ------------------------------------------

def _layout(tmp_path: Path, history: list[dict], current: dict | None, first: int = 1) -> Path:
    """``history/report_submission.v<n>.avsc`` for each of ``history`` (numbered from ``first``), and the
    current ``report_submission.avsc``."""
    (tmp_path / "history").mkdir(parents=True)
    for number, schema in enumerate(history, start=first):
        (tmp_path / "history" / f"report_submission.v{number}.avsc").write_text(json.dumps(schema), encoding="utf-8")
    if current is not None:
        (tmp_path / "report_submission.avsc").write_text(json.dumps(current), encoding="utf-8")
    return tmp_path


def test_a_published_compatible_version_checks_every_pair(tmp_path, capsys):
    v2 = _evolve(COMPATIBLE["optional field with a default"])
    v3 = _evolve(lambda s: (COMPATIBLE["optional field with a default"](s), COMPATIBLE["defaulted int field"](s)))
    directory = _layout(tmp_path, [REPORT, v2], v3)
    checks = check_directory(directory)
    assert len(checks) == 9 and all(c.ok for c in checks)
    assert main([str(directory)]) == 0
    out = capsys.readouterr().out
    assert "ok   ReportSubmission: history/report_submission.v1.avsc" in out
    assert out.splitlines()[-1] == "all 9 compatible"


def test_a_breaking_version_fails_the_command(tmp_path, capsys):
    directory = _layout(tmp_path, [REPORT], _evolve(BREAKING["new field without a default"][0]))
    checks = check_directory(directory)
    failed = [c for c in checks if not c.ok]
    assert [(c.writer.path.name, c.reader.path.name) for c in failed] == [
        ("report_submission.v1.avsc", "report_submission.avsc")]
    assert "No default value for field contact_email" in failed[0].problems[0]
    assert main([str(directory)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line[:4] for line in lines[:-1]] == ["ok  ", "FAIL", "ok  ", "ok  "]
    assert lines[-1] == "3 of 4 compatible"


def test_history_without_a_current_version_fails_the_check(tmp_path, capsys):
    directory = _layout(tmp_path, [REPORT], None)
    checks = check_directory(directory)
    assert any(not c.ok and "no current version" in c.problems[0] for c in checks)
    assert main([str(directory)]) == 1
    assert "no_reader_schema" in capsys.readouterr().out


def test_a_schema_that_does_not_parse_is_a_problem_not_a_crash():
    bad_default = _evolve(lambda s: _field(s, "revision").update(default="zero"))
    problems = check_compatible(REPORT, bad_default)
    assert problems and all("does not parse" in p for p in problems)


def test_a_directory_the_pipeline_cannot_load_fails_the_check(tmp_path, capsys):
    (tmp_path / "a.avsc").write_text(json.dumps(REPORT), encoding="utf-8")
    (tmp_path / "b.avsc").write_text(json.dumps(REPORT), encoding="utf-8")
    assert main([str(tmp_path)]) == 1
    assert "two current schemas" in capsys.readouterr().out


# --- both directions through the real decoder ----------------------------------------------------------

def _report() -> dict:
    return {
        "event_id": "0b6f4a9e-2f61-4d39-9c55-2a0f8f2f6c11", "province_code": "38",
        "reporting_unit": {"code": "38.S02", "kind": "AGENCY", "name": None},
        "report_type": "QUARTERLY", "period": "2026Q3",
        "values": [{"indicator_code": "it_staff", "numerator": None, "denominator": None, "value": 4.0,
                    "unit": "count"}],
        "revision": 0, "submitted_at": datetime(2026, 9, 20, 16, 30, tzinfo=timezone.utc),
        "source_system": "thanhhoa-dic",
    }


def _message(schema: dict, record: dict) -> bytes:
    """A single-object message written with ``schema``, as a province on that version sends it."""
    buffer = io.BytesIO()
    buffer.write(MARKER + schema_fingerprint(schema))
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    return buffer.getvalue()


def test_new_reader_reads_the_old_writer_and_rolled_back_reader_reads_the_new_writer(tmp_path):
    v2 = _evolve(COMPATIBLE["optional field with a default"])
    published = SchemaRegistry(_layout(tmp_path / "published", [REPORT], v2))
    record, writer = decode(encode(_report()), published)  # a province still on v1
    assert writer.path.name == "report_submission.v1.avsc" and record["contact_email"] is None

    # Rolled back: v1 current again, v2 kept in history, so what provinces already wrote still decodes.
    rolled_back = SchemaRegistry(_layout(tmp_path / "rolled_back", [v2], REPORT, first=2))
    new_message = _message(v2, {**_report(), "contact_email": "dic@thanhhoa.gov.vn"})
    record, writer = decode(new_message, rolled_back)
    assert writer.path.name == "report_submission.v2.avsc"
    assert "contact_email" not in record and record["period"] == "2026Q3"
