"""Decoded records that Avro accepts but bronze must not store: each gets its dead-letter reason."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from readiness.contracts.encoding import TARGET_PLAN, encode
from readiness.contracts.limits import STRING_LIMITS
from readiness.transforms.decode import decode_value

T0 = datetime(2026, 10, 5, 8, 0, tzinfo=timezone.utc)


def report(**changes) -> dict:
    unit = {"code": "38.S01", "kind": "AGENCY", "name": "Sở Nội vụ", **changes.pop("unit", {})}
    return {"event_id": "00000000-0000-4000-8000-000000000001", "province_code": "38", "reporting_unit": unit,
            "report_type": "QUARTERLY", "period": "2026Q3",
            "values": [{"indicator_code": "share", "numerator": 1.0, "denominator": 2.0, "value": None, "unit": None}],
            "revision": 0, "submitted_at": T0, "source_system": "test", **changes}


def outcome(record: dict, full_name: str | None = None) -> tuple[str | None, str | None]:
    decoded = decode_value(encode(record, full_name) if full_name else encode(record))
    return decoded["error_reason"], decoded["error_detail"]


def test_a_well_formed_report_decodes():
    assert outcome(report()) == (None, None)


@pytest.mark.parametrize(("changes", "reason", "field"), [
    ({"period": "2026Q3\x00"}, "control_character", "period"),
    ({"period": "2" * 300}, "field_too_long", "period"),
    ({"period": "2026Q5"}, "bad_period", "period"),
    ({"period": "../../etc"}, "bad_period", "period"),
    ({"period": ""}, "bad_period", "period"),
    ({"province_code": "3" * 9}, "field_too_long", "province_code"),
    ({"source_system": "x" * 131_072}, "field_too_long", "source_system"),
    ({"source_system": "line\nbreak"}, "control_character", "source_system"),
    ({"unit": {"code": "38\x1b[2J"}}, "control_character", "reporting_unit.code"),
    ({"unit": {"name": "n" * 513}}, "field_too_long", "reporting_unit.name"),
    ({"values": [{"indicator_code": "s" * 65, "numerator": 1.0, "denominator": 2.0}]}, "field_too_long",
     "values.indicator_code"),
    ({"values": [{"indicator_code": "share", "value": 1.0, "unit": "\x7f"}]}, "control_character", "values.unit"),
    ({"values": [{"indicator_code": f"i{n}", "value": 1.0} for n in range(201)]}, "too_many_items", "values"),
])
def test_records_that_would_break_a_write_are_dead_letters(changes, reason, field):
    got_reason, detail = outcome(report(**changes))
    assert got_reason == reason
    assert detail.startswith(field)


def test_the_bound_is_inclusive():
    limit = STRING_LIMITS["reporting_unit.name"]
    assert outcome(report(unit={"name": "n" * limit})) == (None, None)


def test_target_plans_are_checked_too():
    plan = {"event_id": "00000000-0000-4000-8000-000000000002", "province_code": "38", "plan_year": 2026,
            "plan_reference": "128/KH\x00", "targets": [], "revision": 0, "submitted_at": T0, "source_system": "t"}
    assert outcome(plan, TARGET_PLAN)[0] == "control_character"
