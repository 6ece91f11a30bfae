"""Cross-indicator validation rules and outliers, on tiny DataFrames with the expected rows written out."""
from __future__ import annotations

import json

import pytest

from readiness.quality.policy import PolicyError, load_policy, load_validation_rules
from readiness.transforms.outliers import outlier_warnings
from readiness.transforms.rules import rule_violations

VALUES = ("event_id string, province_code string, unit_code string, period_id string, indicator_code string, "
          "numerator double, denominator double, value double")


def rules_file(tmp_path, *rules) -> list:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": list(rules)}))
    return load_validation_rules(path, known_indicators={"l2", "l3", "staff", "it"})


def rule(rule_id, left, operator, right, strategy="skip_if_any_value_missing", importance="high"):
    return {"id": rule_id, "left": left, "operator": operator, "right": right, "importance": importance,
            "missing_value_strategy": strategy}


def violations(spark, rules, rows):
    found = rule_violations(spark.createDataFrame(rows, VALUES), rules)
    return sorted((r.event_id, r.rule, r.observed_value, r.expected, r.severity) for r in found.collect())


def test_level3_cannot_exceed_level2(spark, tmp_path):
    rules = rules_file(tmp_path, rule("l3_le_l2", "l3.numerator", "<=", "l2.numerator"))
    rows = [("ok", "01", "P", "2026Q3", "l2", 50.0, 100.0, None), ("ok", "01", "P", "2026Q3", "l3", 50.0, 100.0, None),
            ("bad", "01", "P", "2026Q3", "l2", 50.0, 100.0, None), ("bad", "01", "P", "2026Q3", "l3", 60.0, 100.0, None)]
    assert violations(spark, rules, rows) == [
        ("bad", "validation_rule:l3_le_l2", "left=60.0, right=50.0", "l3.numerator <= l2.numerator", "high")]


@pytest.mark.parametrize("strategy, expected", [
    ("skip_if_any_value_missing", []),                        # l2 missing: skipped
    ("skip_if_all_values_missing", [("e", "left=5.0, right=0.0")]),  # missing counts 0
    ("never_skip", [("e", "left=5.0, right=0.0")]),
])
def test_missing_value_strategies(spark, tmp_path, strategy, expected):
    rules = rules_file(tmp_path, rule("r", "l3.numerator", "<=", "l2.numerator", strategy))
    rows = [("e", "01", "P", "2026Q3", "l3", 5.0, 10.0, None)]
    assert [(e, obs) for e, _, obs, _, _ in violations(spark, rules, rows)] == expected


def test_all_missing_is_skipped_unless_never_skip(spark, tmp_path):
    rules = rules_file(tmp_path, rule("a", "l3.numerator", "<=", "l2.numerator", "skip_if_all_values_missing"),
                       rule("b", "l3.numerator + 1", ">", "l2.numerator", "never_skip"))
    rows = [("e", "01", "P", "2026Q3", "staff", 5.0, 10.0, None)]  # neither l2 nor l3 reported
    # a: skipped; b: 0 + 1 > 0 holds, so no violation either.
    assert violations(spark, rules, rows) == []


@pytest.mark.parametrize("operator, holds", [("<=", False), ("<", False), (">=", True), (">", True),
                                             ("==", False), ("!=", True)])
def test_operators(spark, tmp_path, operator, holds):
    rules = rules_file(tmp_path, rule("op", "staff.denominator + it.value", operator, "staff.numerator", importance="low"))
    rows = [("e", "01", "A", "2026Q3", "staff", 10.0, 40.0, None), ("e", "01", "A", "2026Q3", "it", None, None, 2.0)]
    found = violations(spark, rules, rows)
    assert found == ([] if holds else [("e", "validation_rule:op", "left=42.0, right=10.0",
                                         f"staff.denominator + it.value {operator} staff.numerator", "low")])


def test_rules_file_errors_name_the_rule(tmp_path):
    with pytest.raises(PolicyError, match="rule x: unknown indicators"):
        rules_file(tmp_path, rule("x", "nope.numerator", "<=", "l2.numerator"))
    with pytest.raises(PolicyError, match="operator"):
        rules_file(tmp_path, rule("y", "l3.numerator", "=<", "l2.numerator"))
    with pytest.raises(PolicyError, match="neither"):
        rules_file(tmp_path, rule("z", "l3.count", "<=", "l2.numerator"))


def test_shipped_rules_and_policy_load():
    assert [r.id for r in load_validation_rules()][:2] == ["services_level3_within_level2", "services_level4_within_level3"]
    policy = load_policy()
    assert policy.validation_rule_actions == {"high": "quarantine", "medium": "warn", "low": "warn"}
    assert (policy.outlier_threshold, policy.max_quarantined_share) == (3.5, 0.5)


HISTORY = "unit_code string, indicator_code string, report_type string, period_id string, reported_value double"
CURRENT = ("event_id string, province_code string, unit_code string, period_id string, report_type string, "
           "indicator_code string, reported_value double")


def test_modified_z_score_flags_a_value_far_from_the_units_history(spark):
    history = spark.createDataFrame([
        ("u1", "c", "quarterly", p, v) for p, v in
        (("2025Q3", 80.0), ("2025Q4", 82.0), ("2026Q1", 81.0), ("2026Q2", 84.0))] + [
        ("u2", "c", "quarterly", "2026Q1", 50.0), ("u2", "c", "quarterly", "2026Q2", 90.0)], HISTORY)
    current = spark.createDataFrame([
        ("e1", "01", "u1", "2026Q3", "quarterly", "c", 200.0),   # far from 80-84: flagged
        ("e2", "01", "u1", "2026Q3", "quarterly", "c", 83.0) ,   # within: not flagged
        ("e3", "01", "u2", "2026Q3", "quarterly", "c", 500.0),   # only 2 periods of history: not judged
    ], CURRENT)
    found = outlier_warnings(current, history, threshold=3.5, min_history=3, max_history=8).collect()
    # median 81.5, MAD median(|80-81.5|, |82-81.5|, |81-81.5|, |84-81.5|) = median(1.5, .5, .5, 2.5) = 1.0
    # z = 0.6745 x (200 - 81.5) / 1.0 = 79.93
    assert [(r.event_id, r.rule, r.observed_value, r.expected, r.severity) for r in found] == [
        ("e1", "outlier:modified_z_score", "200.0000 (modified z 79.93)",
         "|modified z| <= 3.5 against median 81.5000, MAD 1.0000 of history [80.0, 81.0, 82.0, 84.0]", "warn")]


def test_history_is_limited_to_the_most_recent_periods(spark):
    history = spark.createDataFrame([("u1", "c", "quarterly", p, v) for p, v in
                                     (("2024Q1", 1000.0), ("2025Q1", 10.0), ("2025Q2", 11.0), ("2025Q3", 12.0))], HISTORY)
    current = spark.createDataFrame([("e1", "01", "u1", "2025Q4", "quarterly", "c", 12.5)], CURRENT)
    # With the 3 most recent periods (10, 11, 12: median 11, MAD 1) 12.5 is ordinary.
    assert outlier_warnings(current, history, 3.5, 3, 3).count() == 0
