"""Province report files for the `read_reports` unit tests and the `readiness publish` tests.

The CSV header is the column list the README gives provinces (typed out here, not taken from the
code's ``CSV_COLUMNS``, so a renamed column fails the tests).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CSV_HEADER = ("province_code,unit_code,unit_kind,unit_name,report_type,period,indicator_code,numerator,"
              "denominator,value,value_unit,revision,submitted_at,source_system,event_id")

# One quarterly report of Sở Nội vụ Thanh Hóa with two indicator values: lines 2 and 3 of the file.
GOOD_CSV_ROWS = (
    "38,38.S02,AGENCY,Sở Nội vụ Thanh Hóa,QUARTERLY,2026Q3,computers_per_100_staff,88,100,,,0,"
    "2026-09-20T23:30:00+07:00,thanhhoa-dic,",
    "38,38.S02,AGENCY,Sở Nội vụ Thanh Hóa,QUARTERLY,2026Q3,it_staff,,,4,count,0,"
    "2026-09-20T23:30:00+07:00,thanhhoa-dic,",
)


def write_csv(path: Path, *rows: str, header: str = CSV_HEADER) -> Path:
    """``path`` holding ``header`` and ``rows``, one line each, UTF-8."""
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def json_report(**changes: Any) -> dict[str, Any]:
    """A report object as a province writes it in a JSON file (``submitted_at`` as ISO text)."""
    report: dict[str, Any] = {
        "event_id": "0b6f4a9e-2f61-4d39-9c55-2a0f8f2f6c11",
        "province_code": "25",
        "reporting_unit": {"code": "25.S03", "kind": "AGENCY"},
        "report_type": "SIX_MONTHLY",
        "period": "2026S1",
        "values": [{"indicator_code": "staff_trained_in_ict", "numerator": 310, "denominator": 1240}],
        "revision": 1,
        "submitted_at": "2026-06-18T09:15:00Z",
        "source_system": "phutho-egov",
    }
    report.update(changes)
    return report


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path
