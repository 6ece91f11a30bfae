"""Realistic report events for every province, its agencies and communes, over several periods.

Deterministic for a given ``seed`` and ``as_of``: the same arguments give the same events, ids
included. A few reports are late, a few units never report, a few reports carry faulty values (for the
quality gate to quarantine), a few are corrected by a later revision, and a few messages are not valid
single-object Avro at all (for the dead-letter table).
"""
from __future__ import annotations

import random
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from readiness.contracts.encoding import REPORT_TYPE_TO_AVRO
from readiness.domain.periods import Period, ReportingCalendar, default_calendar
from readiness.domain.reference import Indicator, ReportingUnit, indicators, units_open_on

SOURCE_SYSTEM = "simulator"
UNIT_KIND_TO_AVRO = {"agency": "AGENCY", "commune": "COMMUNE", "district": "DISTRICT", "province": "PROVINCE"}


@dataclass(frozen=True)
class SimulationProfile:
    quarters: int = 6
    half_years: int = 2
    years: int = 1
    late_share: float = 0.04
    missing_share: float = 0.02
    faulty_share: float = 0.01
    correction_share: float = 0.01
    corrupt_messages: int = 3
    scale: int = 1  # repeats of the whole national set under distinct units, for benchmarks


@dataclass
class SimulatedBatch:
    reports: list[dict] = field(default_factory=list)
    corrupt: list[tuple[str, bytes]] = field(default_factory=list)  # (key, raw bytes)
    targets: list[dict] = field(default_factory=list)  # TargetPlan records
    periods: list[Period] = field(default_factory=list)

    @property
    def event_count(self) -> int:
        return len(self.reports) + len(self.corrupt) + len(self.targets)


def simulation_periods(as_of: datetime, profile: SimulationProfile, calendar: ReportingCalendar) -> list[Period]:
    periods = calendar.closed_periods("quarterly", as_of, profile.quarters)
    if profile.half_years:
        periods += calendar.closed_periods("six_monthly", as_of, profile.half_years)
    if profile.years:
        periods += calendar.closed_periods("yearly", as_of, profile.years)
    return periods


def simulate(seed: int, as_of: datetime, profile: SimulationProfile = SimulationProfile(),
             calendar: ReportingCalendar | None = None) -> SimulatedBatch:
    calendar = calendar or default_calendar()
    rng = random.Random(seed)
    batch = SimulatedBatch(periods=simulation_periods(as_of, profile, calendar))
    capability: dict[str, float] = {}
    catalogue = indicators()
    for period in batch.periods:
        _, window_end = period.window(calendar)
        units = units_open_on(window_end)
        for copy in range(profile.scale):
            for unit in units:
                base = capability.setdefault(unit.province_code, rng.uniform(0.45, 0.9))
                if rng.random() < profile.missing_share:
                    continue
                level = min(0.98, base + 0.01 * (period.year - 2025) * 4 + rng.uniform(-0.05, 0.05))
                report = _report(rng, unit, period, level, catalogue, calendar, profile, copy)
                if rng.random() < profile.faulty_share:
                    _break(rng, report)
                batch.reports.append(report)
                if rng.random() < profile.correction_share:
                    batch.reports.append(_correction(rng, report))
    batch.targets = _target_plans(rng, batch.periods, as_of)
    # A province's system with a bug: its messages are signed and sent as that province, but do not decode.
    for n in range(profile.corrupt_messages):
        sender = batch.reports[n % len(batch.reports)]["province_code"] if batch.reports else "01"
        batch.corrupt.append((sender, _corrupt_bytes(rng, n)))
    return batch


def _unit_code(unit: ReportingUnit, copy: int) -> str:
    return unit.code if copy == 0 else f"{unit.code}#{copy}"


def _report(rng: random.Random, unit: ReportingUnit, period: Period, level: float,
            catalogue: tuple[Indicator, ...], calendar: ReportingCalendar,
            profile: SimulationProfile, copy: int) -> dict:
    deadline = period.deadline_utc(calendar)
    if rng.random() < profile.late_share:
        submitted = deadline + timedelta(hours=rng.uniform(1, 24 * 20))
    else:
        submitted = deadline - timedelta(hours=rng.uniform(1, 24 * 6))
    staff = rng.randint(40, 200) if unit.kind in ("agency", "province") else rng.randint(15, 40)
    values = [_value(rng, ind, unit, level, staff) for ind in catalogue if unit.kind in ind.reported_by]
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "province_code": unit.province_code,
        "reporting_unit": {"code": _unit_code(unit, copy), "kind": UNIT_KIND_TO_AVRO[unit.kind], "name": unit.name},
        "report_type": REPORT_TYPE_TO_AVRO[period.report_type],
        "period": period.id,
        "values": [v for v in values if v is not None],
        "revision": 0,
        "submitted_at": submitted.replace(microsecond=(submitted.microsecond // 1000) * 1000),
        "source_system": SOURCE_SYSTEM,
    }


def _value(rng: random.Random, ind: Indicator, unit: ReportingUnit, level: float, staff: int) -> dict | None:
    def ratio(numerator: float, denominator: float) -> dict:
        return {"indicator_code": ind.code, "numerator": float(numerator), "denominator": float(denominator),
                "value": None, "unit": None}

    def amount(value: float, unit_name: str) -> dict:
        return {"indicator_code": ind.code, "numerator": None, "denominator": None,
                "value": float(value), "unit": unit_name}

    jitter = max(0.0, min(1.0, level + rng.uniform(-0.15, 0.15)))
    code = ind.code
    if code == "computers_per_100_staff":
        return ratio(round(staff * (0.55 + 0.6 * jitter)), staff)
    if code in ("staff_using_official_email", "staff_trained_in_ict"):
        return ratio(round(staff * jitter), staff)
    if code == "documents_exchanged_electronically":
        total = rng.randint(200, 3000)
        return ratio(round(total * jitter), total)
    if code.startswith("services_online_level"):
        total = 1800 + zlib.crc32(unit.province_code.encode()) % 300
        share = {"2": 0.5 + 0.5 * level, "3": 0.15 + 0.5 * level, "4": 0.05 + 0.35 * level}[code[-1]]
        return ratio(round(total * min(1.0, share)), total)
    if code == "security_incidents":
        return amount(rng.choice((0, 0, 0, 1, 1, 2)), "count")
    if code == "it_staff":
        return amount(rng.randint(0, 2) + (3 if unit.kind in ("agency", "province") else 0), "count")
    if code == "ict_budget_vnd":
        return amount(round(rng.uniform(5, 50) * level, 2) * 1e9, "VND")
    if ind.is_ratio:  # one unit reporting on itself: 1 of 1 or 0 of 1
        return ratio(1 if rng.random() < jitter else 0, 1)
    return None


def _break(rng: random.Random, report: dict) -> None:
    """Make one value of the report wrong in a way the quality gate must catch."""
    ratios = [v for v in report["values"] if v["denominator"]]
    fault = rng.choice(("numerator_above_denominator", "negative_count", "unknown_indicator"))
    if fault == "numerator_above_denominator" and ratios:
        target = rng.choice(ratios)
        target["numerator"] = target["denominator"] * 3 + 1
    elif fault == "negative_count" and ratios:
        rng.choice(ratios)["denominator"] = -5.0
    else:
        report["values"].append({"indicator_code": "computers_per_household", "numerator": 1.0,
                                 "denominator": 2.0, "value": None, "unit": None})


def _correction(rng: random.Random, report: dict) -> dict:
    corrected = {**report, "values": [dict(v) for v in report["values"]]}
    corrected["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    corrected["revision"] = report["revision"] + 1
    corrected["submitted_at"] = report["submitted_at"] + timedelta(days=rng.randint(1, 5))
    for value in corrected["values"]:
        if value["denominator"] and value["denominator"] > 0:
            value["numerator"] = min(value["denominator"], max(0.0, value["numerator"] or 0.0))
    return corrected


# Thanh Hóa's 2014 plan (Plan 128/KH-UBND) as the template of a province's yearly targets.
PLAN_TEMPLATE = (
    ("computers_per_100_staff", 80.0, "AT_LEAST"),
    ("agencies_on_document_software", 100.0, "AT_LEAST"),
    ("staff_using_official_email", 100.0, "AT_LEAST"),
    ("documents_exchanged_electronically", 60.0, "AT_LEAST"),
    ("communes_on_provincial_network", 30.0, "AT_LEAST"),
    ("services_online_level2", 100.0, "AT_LEAST"),
    ("services_online_level3", 5.0, "AT_LEAST"),
    ("units_with_one_stop_software", 56.0, "AT_LEAST"),
    ("security_incidents", 10.0, "AT_MOST"),
)


def _target_plans(rng: random.Random, periods: list[Period], as_of: datetime) -> list[dict]:
    """A yearly plan per 2025 province for each plan year whose periods end after the reorganisation."""
    from readiness.domain.reference import REORGANISATION_DATE, provinces_in_force

    years = sorted({p.year for p in periods if p.window()[1] >= REORGANISATION_DATE})
    plans = []
    for year in years:
        for province in provinces_in_force(date(year, 12, 31) if year > 2025 else REORGANISATION_DATE):
            targets = [{"indicator_code": code, "comparison": comparison,
                        "target_value": value if comparison == "AT_MOST" else min(100.0, value + rng.choice((0, 0, 5, 10)))
                        if code != "computers_per_100_staff" else value + rng.choice((0, 5, 10))}
                       for code, value, comparison in PLAN_TEMPLATE]
            plans.append({
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "province_code": province.code,
                "plan_year": year,
                "plan_reference": f"{rng.randint(10, 250)}/KH-UBND",
                "targets": targets,
                "revision": 0,
                "submitted_at": datetime(year - 1, 12, 20, 2, 0, tzinfo=timezone.utc) if year - 1 >= 2025
                else datetime(2025, 7, 15, 2, 0, tzinfo=timezone.utc),
                "source_system": SOURCE_SYSTEM,
            })
    return plans


def _corrupt_bytes(rng: random.Random, n: int) -> bytes:
    kinds = (
        b"\xc3\x01" + bytes(rng.getrandbits(8) for _ in range(8)) + b"\x02\x04",  # unknown fingerprint
        b'{"province_code": "38"}',  # JSON sent by mistake: no Avro marker
        b"\xc3\x01\x00",  # truncated header
    )
    return kinds[n % len(kinds)]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
