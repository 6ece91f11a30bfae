"""Reference data kept in the repository: provinces before and after 1 July 2025, reporting units
with opening and closing dates, and the indicator catalogue.

Codes are the key everywhere; names are labels (normalised to NFC when read, since sources mix NFC
and NFD spellings).
"""
from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from readiness.settings import PACKAGE_DATA

DATA_DIR = PACKAGE_DATA
REORGANISATION_DATE = date(2025, 7, 1)
OPEN_END = date(9999, 12, 31)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    kind: str  # province | city
    valid_from: date
    valid_to: date  # inclusive; OPEN_END when still in force


@dataclass(frozen=True)
class ReportingUnit:
    code: str
    kind: str  # agency | commune | district | province
    name: str
    province_code: str
    opened_on: date
    closed_on: date  # inclusive last day; OPEN_END when open

    def open_on(self, day: date) -> bool:
        return self.opened_on <= day <= self.closed_on


@dataclass(frozen=True)
class Indicator:
    code: str
    name_vi: str
    name_en: str
    pillar: str
    unit: str
    numerator: str
    denominator: str
    scale: float
    min_value: float
    max_value: float
    direction: str  # higher | lower
    rollup: str  # ratio_of_sums | sum
    reported_by: tuple[str, ...]
    numerator_at_most_denominator: bool

    @property
    def is_ratio(self) -> bool:
        return self.rollup == "ratio_of_sums"


def _read_csv(name: str) -> list[dict[str, str]]:
    with (DATA_DIR / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@lru_cache(maxsize=1)
def province_mapping() -> dict[str, str]:
    """Former (pre-July-2025) province code -> 2025 province code."""
    return {row["former_code"]: row["code_2025"] for row in _read_csv("admin_units_2025.csv")}


@lru_cache(maxsize=1)
def provinces() -> tuple[Province, ...]:
    """The 63 former provinces (valid to 2025-06-30) and the 34 since 2025-07-01."""
    rows = _read_csv("admin_units_2025.csv")
    former = [Province(r["former_code"], nfc(r["former_name"]), "province", date(2004, 1, 1),
                       date(2025, 6, 30)) for r in rows]
    current = {r["code_2025"]: Province(r["code_2025"], nfc(r["name_2025"]), r["kind_2025"],
                                        REORGANISATION_DATE, OPEN_END) for r in rows}
    return tuple(former) + tuple(sorted(current.values(), key=lambda p: p.code))


def provinces_in_force(day: date) -> list[Province]:
    return [p for p in provinces() if p.valid_from <= day <= p.valid_to]


def province_names(day: date = REORGANISATION_DATE) -> dict[str, str]:
    return {p.code: p.name for p in provinces_in_force(day)}


@lru_cache(maxsize=1)
def indicators() -> tuple[Indicator, ...]:
    result = []
    for r in _read_csv("indicators.csv"):
        result.append(Indicator(
            code=r["code"], name_vi=nfc(r["name_vi"]), name_en=r["name_en"], pillar=r["pillar"],
            unit=r["unit"], numerator=r["numerator"], denominator=r["denominator"],
            scale=float(r["scale"]), min_value=float(r["min_value"]), max_value=float(r["max_value"]),
            direction=r["direction"], rollup=r["rollup"], reported_by=tuple(r["reported_by"].split("|")),
            numerator_at_most_denominator=r["numerator_at_most_denominator"] == "true",
        ))
    return tuple(result)


def indicator_by_code() -> dict[str, Indicator]:
    return {i.code: i for i in indicators()}


@lru_cache(maxsize=1)
def reporting_units() -> tuple[ReportingUnit, ...]:
    return tuple(
        ReportingUnit(r["code"], r["kind"], nfc(r["name"]), r["province_code"],
                      date.fromisoformat(r["opened_on"]), date.fromisoformat(r["closed_on"]))
        for r in _read_csv("reporting_units.csv")
    )


def units_open_on(day: date) -> list[ReportingUnit]:
    return [u for u in reporting_units() if u.open_on(day)]
