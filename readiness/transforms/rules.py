"""Cross-indicator validation rules (DHIS2 style) evaluated on each report."""
from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from readiness.quality.policy import Term, ValidationRule

REPORT_COLUMNS = ["event_id", "province_code", "unit_code", "period_id"]


def _term_column(term: Term) -> str:
    return f"{term.indicator_code}__{term.field}"


def _side(terms: tuple[Term, ...], fill_missing: bool) -> Column:
    parts = [F.lit(t.number) if t.indicator_code is None
             else (F.coalesce(F.col(_term_column(t)), F.lit(0.0)) if fill_missing else F.col(_term_column(t)))
             for t in terms]
    return reduce(lambda a, b: a + b, parts)


def _holds(left: Column, operator: str, right: Column) -> Column:
    return {"<=": left <= right, "<": left < right, ">=": left >= right, ">": left > right,
            "==": left == right, "!=": left != right}[operator]


def rule_violations(values: DataFrame, rules: list[ValidationRule]) -> DataFrame:
    """One row per report and broken rule: rule, observed sides, the rule as expected, importance.

    ``values``: one row per indicator value (event_id, province_code, unit_code, period_id,
    indicator_code, numerator, denominator, value). Reports are pivoted so each term of a rule is a
    column; a rule is skipped for a report according to its missing-value strategy.
    """
    terms = sorted({(t.indicator_code, t.field) for r in rules for t in r.left + r.right if t.indicator_code})
    pivoted = values.groupBy(*REPORT_COLUMNS).agg(
        *[F.max(F.when(F.col("indicator_code") == code, F.col(field))).alias(f"{code}__{field}") for code, field in terms])
    parts = []
    for rule in rules:
        columns = [F.col(_term_column(t)) for t in rule.left + rule.right if t.indicator_code]
        any_missing = reduce(lambda a, b: a | b, [c.isNull() for c in columns], F.lit(False))
        all_missing = reduce(lambda a, b: a & b, [c.isNull() for c in columns], F.lit(True))
        skip = {"skip_if_any_value_missing": any_missing, "skip_if_all_values_missing": all_missing,
                "never_skip": F.lit(False)}[rule.missing_value_strategy]
        fill = rule.missing_value_strategy != "skip_if_any_value_missing"
        left, right = _side(rule.left, fill), _side(rule.right, fill)
        broken = pivoted.where(~skip & ~_holds(left, rule.operator, right))
        parts.append(broken.select(
            *REPORT_COLUMNS,
            F.lit(None).cast("string").alias("indicator_code"),
            F.lit(f"validation_rule:{rule.id}").alias("rule"),
            F.format_string("left=%s, right=%s", left.cast("string"), right.cast("string")).alias("observed_value"),
            F.lit(f"{rule.left_text} {rule.operator} {rule.right_text}").alias("expected"),
            F.lit(rule.importance).alias("severity"),
        ))
    if not parts:
        return values.sparkSession.createDataFrame(
            [], "event_id string, province_code string, unit_code string, period_id string, indicator_code string, "
                "rule string, observed_value string, expected string, severity string")
    return reduce(DataFrame.unionByName, parts)
