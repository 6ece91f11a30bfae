"""Checks on a decoded record before it may become a bronze row.

A record that Avro accepts can still break a write or a reader: the period becomes bronze's
partition directory, so a NUL byte or 300 characters there failed the whole batch (``Mkdirs
failed``) and every rerun failed on it again. Each string field therefore has a length bound and
may hold no control characters, and the period must be a period id; a record that fails gets a
dead-letter reason instead of a row. Bounds come from :data:`readiness.contracts.limits.STRING_LIMITS`.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from readiness.contracts.limits import MAX_ITEMS, STRING_LIMITS
from readiness.domain.periods import PERIOD_ID_PATTERN

PERIOD_ID = re.compile(PERIOD_ID_PATTERN)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Each failure class of a record (the dead-letter reasons this module adds).
REASONS = ("bad_period", "field_too_long", "control_character", "too_many_items")


def _strings(record: dict) -> Iterator[tuple[str, str]]:
    """(dotted field name, value) of every string in a decoded report or target plan."""
    for name in ("event_id", "province_code", "period", "source_system", "plan_reference"):
        if isinstance(record.get(name), str):
            yield name, record[name]
    unit = record.get("reporting_unit") or {}
    for name in ("code", "name"):
        if isinstance(unit.get(name), str):
            yield f"reporting_unit.{name}", unit[name]
    for list_name in ("values", "targets"):
        for item in record.get(list_name) or ():
            for name in ("indicator_code", "unit"):
                if isinstance(item.get(name), str):
                    yield f"{list_name}.{name}", item[name]


def record_problem(record: dict) -> tuple[str, str] | None:
    """``(reason, detail)`` for the first problem of a decoded record, or None if it may be stored."""
    for list_name in ("values", "targets"):
        items = record.get(list_name)
        if items is not None and len(items) > MAX_ITEMS[list_name]:
            return "too_many_items", f"{list_name} has {len(items)} items (at most {MAX_ITEMS[list_name]})"
    for field, value in _strings(record):
        limit = STRING_LIMITS[field]
        if len(value) > limit:
            return "field_too_long", f"{field} has {len(value)} characters (at most {limit})"
        if CONTROL.search(value):
            return "control_character", f"{field} contains control character {CONTROL.search(value)[0]!r}"
    period = record.get("period")
    if period is not None and not PERIOD_ID.match(period):
        return "bad_period", f"period {period!r} is not a period id (2026Q3, 2026S1, 2026)"
    return None
