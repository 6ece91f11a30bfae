"""The two bases every gold table is computed on, and how readers name them.

``as_reported``: units counted in the province they belonged to in the period (63 provinces
before July 2025, 34 after). ``restated_2025``: every unit re-summed onto the 34 provinces in force
since 1 July 2025, so periods on both sides of the reorganisation compare.
"""
from __future__ import annotations

from datetime import date

from readiness.domain.reference import province_names, provinces_in_force

AS_REPORTED = "as_reported"
RESTATED_2025 = "restated_2025"
BASES = (AS_REPORTED, RESTATED_2025)
# What analysts see unless they ask for the other basis.
DEFAULT_BASIS = RESTATED_2025
BASIS_LABELS = {
    RESTATED_2025: "restated to the 34 provinces of 2025",
    AS_REPORTED: "as reported (provinces in force in the period)",
}


def province_names_for(basis: str, day: date) -> dict[str, str]:
    """Province names for a basis on ``day`` (a period's last data day): the 34 provinces of 2025
    when restated, the provinces in force that day as reported."""
    if basis == RESTATED_2025:
        return province_names()
    return {p.code: p.name for p in provinces_in_force(day)}
