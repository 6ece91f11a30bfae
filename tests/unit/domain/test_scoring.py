"""Methodologies as data: normalisation, composites, rounding half up before competition ranking."""
from __future__ import annotations

import json

import pytest

from readiness.domain.scoring import (
    IndicatorRule,
    MethodologyError,
    competition_ranks,
    composite,
    load_methodology,
    normalise,
    parse_methodology,
    rank_rows,
    read_components_csv,
    round_half_up,
)


def test_competition_ranking_1224():
    assert competition_ranks({"a": 0.9, "b": 0.7, "c": 0.7, "d": 0.5}) == {"a": 1, "b": 2, "c": 2, "d": 4}


def test_rounding_half_up_happens_before_ranking():
    methodology = parse_methodology({
        "id": "t", "version": "1", "components": [{"id": "x", "weight": 1}],
        "composite": {"method": "weighted_mean"}, "rounding": {"decimals": 2}})
    rows = composite(methodology, {"01": {"x": 0.125}, "02": {"x": 0.1249999}, "03": {"x": 0.13}})
    assert [(r.unit, r.index, r.rank) for r in rows] == [("01", 0.13, 1), ("03", 0.13, 1), ("02", 0.12, 3)]


def test_round_half_up_not_bankers():
    assert round_half_up(0.00005, 4) == 0.0001
    assert round_half_up(2.675, 2) == 2.68


@pytest.mark.parametrize("method, extra, values, expected", [
    ("ratio_to_reference", {"reference": 80, "cap": 1}, {"a": 40.0, "b": 120.0}, {"a": 0.5, "b": 1.0}),
    ("min_max", {}, {"a": 10.0, "b": 20.0, "c": 15.0}, {"a": 0.0, "b": 1.0, "c": 0.5}),
    ("z_score", {}, {"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 0.0, "b": 0.5, "c": 1.0}),
])
def test_normalisations(method, extra, values, expected):
    rule = IndicatorRule("i", 1.0, method, extra.get("reference"), extra.get("cap"), False)
    assert normalise(rule, values) == pytest.approx(expected)


def test_lower_is_better_is_reversed():
    rule = IndicatorRule("incidents", 1.0, "min_max", None, None, True)
    assert normalise(rule, {"a": 0.0, "b": 4.0, "c": 1.0}) == pytest.approx({"a": 1.0, "b": 0.0, "c": 0.75})


def test_ict_index_is_the_equal_weight_mean_of_three_sub_indexes():
    methodology = load_methodology("ict-index")
    values = {
        "01": {"computers_per_100_staff": 50.0, "agencies_with_it_staff": 100.0, "services_online_level2": 80.0},
        "02": {"computers_per_100_staff": 100.0, "agencies_with_it_staff": 40.0, "services_online_level2": 100.0},
    }
    rows = rank_rows(methodology, values)
    assert [(r.unit, r.index, r.rank) for r in rows] == [("02", 0.8, 1), ("01", 0.7667, 2)]
    assert rows[1].components == pytest.approx({"infrastructure": 0.5, "human_resources": 1.0, "application": 0.8})


def test_points_sum_divides_by_total_points():
    methodology = parse_methodology({
        "id": "p", "version": "1", "components": [{"id": "a", "points": 100}, {"id": "b", "points": 200}],
        "composite": {"method": "points_sum", "total_points": 1000}, "rounding": {"decimals": 4}})
    rows = composite(methodology, {"01": {"a": 0.5, "b": 1.0}})
    assert rows[0].index == 0.25


def test_a_methodology_added_as_a_file(tmp_path):
    (tmp_path / "mine.v2.json").write_text(json.dumps({
        "id": "mine", "version": "2", "components": [{"id": "infra", "weight": 1, "indicators": [
            {"code": "computers_per_100_staff", "normalisation": {"method": "min_max"}}]}],
        "composite": {"method": "weighted_mean"}, "rounding": {"decimals": 3}}))
    methodology = load_methodology("mine", tmp_path)
    rows = rank_rows(methodology, {"01": {"computers_per_100_staff": 60.0}, "02": {"computers_per_100_staff": 90.0},
                                   "03": {"computers_per_100_staff": 70.0}})
    assert [(r.unit, r.index, r.rank) for r in rows] == [("02", 1.0, 1), ("03", 0.333, 2), ("01", 0.0, 3)]


def test_unknown_normalisation_is_an_error():
    with pytest.raises(MethodologyError, match="normalisation"):
        parse_methodology({"id": "x", "version": "1", "components": [{"id": "c", "indicators": [
            {"code": "i", "normalisation": {"method": "log"}}]}], "composite": {"method": "weighted_mean"}})


def test_components_csv_needs_its_header():
    assert read_components_csv(["unit,component,value", "01,a,0.5"]) == {"01": {"a": 0.5}}
    with pytest.raises(MethodologyError, match="header"):
        read_components_csv(["province,a", "01,0.5"])
