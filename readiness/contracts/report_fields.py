"""What the CSV and JSON readers of report files share: the error, event ids, times, the year range.

Every problem in a report file is one :class:`ReportFileError` line naming the file, where in it
and the field; values echoed in a message are clipped, so a 131,072-character field stays one line.
"""
from __future__ import annotations

import math
import uuid
from datetime import datetime, timezone
from typing import Any

EVENT_NAMESPACE = uuid.UUID("6f1c2a3e-5b7d-4c1e-9a0f-2d4b8e6c0a11")
# Reports and periods outside these years are typing errors (0001, 9999), not history or plans.
YEARS = range(2000, 2100)


class ReportFileError(ValueError):
    pass


def finite(number: float, where: str, field: str, shown: str) -> float:
    """``number`` if it is finite; else the file's one-line error (``shown``: the number as the file has it)."""
    if not math.isfinite(number):
        raise ReportFileError(f"{where}: field {field!r}: {shown} is not a finite number (NaN and infinity are refused)")
    return number


def clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def event_id(given: object, report: dict[str, Any], where: str) -> str:
    """The given id in canonical form, or the name-based id of the report's identity.

    The name-based id is a UUID 5 of "province|unit|report type|period|revision": the same report
    sent again, from the same file or a regenerated one, carries the same id.
    """
    if given is None or given == "":
        identity = "|".join(str(part) for part in (report["province_code"], report["reporting_unit"]["code"],
                                                   report["report_type"], report["period"], report["revision"]))
        return str(uuid.uuid5(EVENT_NAMESPACE, identity))
    if not isinstance(given, str):
        raise ReportFileError(f"{where}: field 'event_id': expected a UUID as text, found {type(given).__name__}")
    try:
        return str(uuid.UUID(given))
    except ValueError:
        raise ReportFileError(f"{where}: field 'event_id': {clip(repr(given))} is not a UUID") from None


def parse_time(text: str, where: str) -> datetime:
    """An ISO 8601 time with a zone, in UTC, within :data:`YEARS`."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        raise ReportFileError(f"{where}: field 'submitted_at': {clip(repr(text))} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ReportFileError(f"{where}: field 'submitted_at': {text!r} has no time zone (use Z or +07:00)")
    try:
        utc: datetime | None = moment.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00+07:00 is in year 0 in UTC
        utc = None
    if utc is None or utc.year not in YEARS:
        raise ReportFileError(f"{where}: field 'submitted_at': {text!r} is outside the years {YEARS[0]}-{YEARS[-1]}")
    return utc
