"""Report events as a province's system sends them, for the integration tests."""
from __future__ import annotations

from datetime import datetime


def report_event(n: int, province: str, unit: str, kind: str, values: list[dict], period: str,
                 submitted_at: datetime, revision: int = 0, source_system: str = "test") -> dict:
    """A ReportSubmission record; event ids ``00000000-0000-4000-8000-<n>``."""
    return {"event_id": f"00000000-0000-4000-8000-{n:012d}", "province_code": province,
            "reporting_unit": {"code": unit, "kind": kind, "name": None}, "report_type": "QUARTERLY",
            "period": period, "values": values, "revision": revision, "submitted_at": submitted_at,
            "source_system": source_system}
