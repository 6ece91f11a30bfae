"""Bounds on the fields of the event contracts: the one source for the producer's checks and the ingest's.

Avro itself bounds nothing; these limits keep one message from breaking a write (a partition
directory, a column statistic) or a reader's screen. They are generous for real reports.
"""
from __future__ import annotations

# Longest string each field may hold, in characters (dotted names for nested fields).
STRING_LIMITS: dict[str, int] = {
    "event_id": 36,
    "province_code": 8,
    "period": 16,
    "reporting_unit.code": 64,
    "reporting_unit.name": 512,
    "values.indicator_code": 64,
    "values.unit": 32,
    "targets.indicator_code": 64,
    "plan_reference": 512,
    "source_system": 128,
}
# Most items a report's ``values`` or a plan's ``targets`` may hold.
MAX_ITEMS: dict[str, int] = {"values": 200, "targets": 200}
