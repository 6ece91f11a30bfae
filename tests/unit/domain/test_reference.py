"""Reference data: provinces before and after 1 July 2025, units with opening and closing dates, catalogue."""
from __future__ import annotations

import unicodedata
from datetime import date

from readiness.domain.reference import indicators, province_mapping, provinces_in_force, reporting_units, units_open_on


def test_63_former_and_34_current_provinces():
    assert len(provinces_in_force(date(2025, 6, 30))) == 63
    assert len(provinces_in_force(date(2025, 7, 1))) == 34
    mapping = province_mapping()
    assert len(mapping) == 63 and len(set(mapping.values())) == 34


def test_merges_named_in_the_brief():
    mapping = province_mapping()
    # Hòa Bình -> Phú Thọ, Hậu Giang -> Cần Thơ, Bình Định -> Gia Lai, Ninh Thuận -> Khánh Hòa, Thanh Hóa unchanged.
    names = {p.code: p.name for p in provinces_in_force(date(2025, 6, 30))}
    by_name = {unicodedata.normalize("NFC", n): c for c, n in names.items()}
    current = {p.code: p.name for p in provinces_in_force(date(2026, 1, 1))}
    assert current[mapping[by_name["Hòa Bình"]]] == "Phú Thọ"
    assert current[mapping[by_name["Hậu Giang"]]] == "Cần Thơ"
    assert current[mapping[by_name["Bình Định"]]] == "Gia Lai"
    assert current[mapping[by_name["Ninh Thuận"]]] == "Khánh Hòa"
    assert mapping[by_name["Thanh Hóa"]] == by_name["Thanh Hóa"] == "38"


def test_a_unit_closed_mid_year_is_not_expected_afterwards():
    district = next(u for u in reporting_units() if u.kind == "district" and u.province_code == "17")
    assert district.closed_on == date(2025, 6, 30)
    assert district in units_open_on(date(2025, 6, 14))        # end of 2025Q2's data window
    assert district not in units_open_on(date(2025, 9, 14))    # 2025Q3
    assert district not in units_open_on(date(2025, 12, 14))   # the yearly report of 2025


def test_absorbed_provinces_units_close_and_seat_holders_carry_on():
    open_after = {u.code for u in units_open_on(date(2025, 7, 1))}
    assert "17.S01" not in open_after   # Hòa Bình's departments close with the merger
    assert "25.S01" in open_after       # Phú Thọ holds the seat: its departments carry on
    assert not any(u.kind == "district" for u in units_open_on(date(2025, 7, 1)))


def test_catalogue_covers_the_brief_with_valid_rules():
    codes = {i.code for i in indicators()}
    assert {"computers_per_100_staff", "agencies_on_document_software", "staff_using_official_email",
            "documents_exchanged_electronically", "communes_on_provincial_network", "services_online_level2",
            "services_online_level3", "services_online_level4", "units_with_one_stop_software",
            "agencies_on_data_network", "agencies_using_digital_signatures", "agencies_with_it_staff",
            "agencies_with_cio", "staff_trained_in_ict", "agencies_with_security_protection",
            "security_incidents", "it_staff", "ict_budget_vnd"} <= codes
    for ind in indicators():
        assert ind.min_value <= ind.max_value and ind.direction in ("higher", "lower")
        assert ind.rollup in ("ratio_of_sums", "sum")
        assert not (ind.numerator_at_most_denominator and not ind.is_ratio)
