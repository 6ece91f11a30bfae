"""Every row rule of a suite evaluated in one pass over the batch, by Great Expectations' own parts.

GX validates a map expectation on Spark one metric at a time: a filtered count for
``unexpected_count``, another filter and collect for the unexpected values, another for the
unexpected index list, each rebuilding the rule's condition (for a 3,000-value ``value_set``,
thousands of py4j calls) and each a Spark job; a 28-rule suite cost about 200 jobs and 60,000 py4j
round trips whatever the batch's size. Here each rule's condition is asked of GX once (its
``<map metric>.condition`` metric, which builds a Spark Column and runs no job), applied to GX's own
domain records for the rule (``get_domain_records``: the null filter of a column rule,
``ignore_row_if`` of a pair rule), and all rules are evaluated together:

1. one job collects every unexpected row of every rule: the rule, the key columns and the rules'
   domain columns (``unexpected_index_list``, its length ``unexpected_count``, and the first
   values as ``unexpected_values``);
2. one job counts the nulls of every column rule's column (``column_values.nonnull.unexpected_count``:
   the table's rows less these are GX's denominator for ``mostly`` and the percentages);
3. one job counts the domain rows of the pair and multicolumn rules (``filtered_row_count``, their
   denominator).

These are the metric values GX's map metrics compute on Spark (the same condition, the same
``__unexpected == True`` filter on the same domain records). They are handed to the expectation's
own ``metrics_validate``, so GX still decides success (``mostly`` included) and formats the result
(``COMPLETE`` with ``unexpected_index_column_names``). A rule whose condition GX cannot build (a
missing column) gets GX's failed result with its ``exception_info``, as in a GX validation.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

from great_expectations.constants import MAX_RESULT_RECORDS
from great_expectations.core.expectation_validation_result import ExpectationValidationResult
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    Expectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.registry import get_metric_kwargs
from great_expectations.validator.computed_metric import MetricValue
from great_expectations.validator.metric_configuration import MetricConfiguration
from great_expectations.validator.metrics_calculator import MetricsCalculator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

ROW_EXPECTATIONS = (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
# Columns of the fused evaluation; names a batch does not use (GX itself adds "__unexpected").
_RULE, _UNEXPECTED = "__rule_index", "__unexpected"


class RowRuleError(RuntimeError):
    """An expectation needs a metric this evaluation does not compute: run it through GX instead."""


def domain_columns(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    """The columns a rule reads: ``column``, ``column_A`` and ``column_B``, or ``column_list``."""
    if "column" in kwargs:
        return (str(kwargs["column"]),)
    if "column_A" in kwargs and "column_B" in kwargs:
        return (str(kwargs["column_A"]), str(kwargs["column_B"]))
    if "column_list" in kwargs:
        return tuple(str(c) for c in kwargs["column_list"])
    return ()


def result_format(key_columns: Sequence[str]) -> dict[str, Any]:
    """Every unexpected row, named by the batch's key columns."""
    return {"result_format": "COMPLETE", "unexpected_index_column_names": list(key_columns),
            "return_unexpected_index_query": False}


@dataclass(frozen=True)
class _Rule:
    expectation: Expectation
    condition: Any  # a Spark Column: the row is unexpected where it is true
    domain: DataFrame  # GX's domain records for the rule
    columns: tuple[str, ...]


def evaluate(batch: Any, expectations: Sequence[Expectation], key_columns: Sequence[str],
             row_count: int) -> list[ExpectationValidationResult]:
    """GX's validation result of each row expectation on ``batch`` (a GX 1.x Spark batch), in order."""
    engine = batch.data.execution_engine
    engine.batch_manager.load_batch_list(batch_list=[batch])
    runtime = {"result_format": result_format(key_columns)}
    conditions = {id(e): _condition_metric(e, runtime) for e in expectations}
    calculator = MetricsCalculator(execution_engine=engine, show_progress_bars=False)
    resolved, aborted = calculator.compute_metrics(list(conditions.values()), {"catch_exceptions": True},
                                                   min_graph_edges_pbar_enable=0)
    results: dict[int, ExpectationValidationResult] = {}
    rules: list[_Rule] = []
    for exp in expectations:
        metric = conditions[id(exp)]
        if metric.id in aborted:
            info = aborted[metric.id]["exception_info"]
            results[id(exp)] = ExpectationValidationResult(success=False, expectation_config=exp.configuration,
                                                           exception_info={str(metric.id): info})
            continue
        condition, compute_kwargs, accessor_kwargs = resolved[metric.id]
        domain = engine.get_domain_records(domain_kwargs={**compute_kwargs, **accessor_kwargs})
        rules.append(_Rule(exp, condition, domain, domain_columns(exp.configuration.kwargs)))
    if rules:
        table = engine.get_domain_records(domain_kwargs={})
        for rule, evr in zip(rules, _validate(table, rules, key_columns, row_count, runtime, engine)):
            results[id(rule.expectation)] = evr
    return [results[id(e)] for e in expectations]


def _condition_metric(exp: Expectation, runtime: dict[str, Any]) -> MetricConfiguration:
    name = f"{exp.map_metric}.condition"
    kwargs = get_metric_kwargs(metric_name=name, configuration=exp.configuration, runtime_configuration=runtime)
    return MetricConfiguration(name, kwargs["metric_domain_kwargs"], kwargs["metric_value_kwargs"])


def _validate(table: DataFrame, rules: list[_Rule], key_columns: Sequence[str], row_count: int,
              runtime: dict[str, Any], engine: Any) -> list[ExpectationValidationResult]:
    detail = list(dict.fromkeys([*key_columns, *(c for r in rules for c in r.columns)]))
    unexpected = reduce(DataFrame.unionAll, [
        r.domain.withColumn(_UNEXPECTED, r.condition).where(F.col(_UNEXPECTED) == True)  # noqa: E712
        .select(F.lit(i).alias(_RULE), *detail) for i, r in enumerate(rules)])
    failing: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(rules))}
    for row in unexpected.collect():
        values = row.asDict()
        failing[values.pop(_RULE)].append(values)
    # Column rules: GX's nonnull count is the table's rows less the column's nulls. Pair and
    # multicolumn rules: the rows of their domain (after ignore_row_if).
    mapped = sorted({r.columns[0] for r in rules if isinstance(r.expectation, ColumnMapExpectation)})
    nulls = table.agg(*[F.count(F.when(F.col(c).isNull(), 1)).alias(c) for c in mapped]).collect()[0].asDict() \
        if mapped else {}
    others = [i for i, r in enumerate(rules) if not isinstance(r.expectation, ColumnMapExpectation)]
    domain_rows = {row[_RULE]: int(row["rows"]) for row in reduce(DataFrame.unionAll, [
        rules[i].domain.select(F.lit(i).alias(_RULE)) for i in others]).groupBy(_RULE).count()
        .withColumnRenamed("count", "rows").collect()} if others else {}
    results = []
    for i, rule in enumerate(rules):
        rows, metric = failing[i], rule.expectation.map_metric
        values = {
            "table.row_count": row_count,
            f"{metric}.unexpected_count": len(rows),
            f"{metric}.filtered_row_count": domain_rows.get(i, 0),
            f"{metric}.unexpected_index_list": [{c: r[c] for c in dict.fromkeys([*key_columns, *rule.columns])}
                                                for r in rows],
            f"{metric}.unexpected_values": [_unexpected_value(rule, r) for r in rows[:MAX_RESULT_RECORDS]],
            # Not shown: the result format has return_unexpected_index_query off.
            f"{metric}.unexpected_index_query": None,
        }
        if rule.columns[0] in nulls and isinstance(rule.expectation, ColumnMapExpectation):
            values["column_values.nonnull.unexpected_count"] = int(nulls[rule.columns[0]])
        results.append(_gx_result(rule.expectation, values, runtime, engine))
    return results


def _unexpected_value(rule: _Rule, row: Mapping[str, Any]) -> Any:
    """A failing row's value as GX's Spark map metrics list it: the value, a pair, or a dict."""
    if isinstance(rule.expectation, ColumnMapExpectation):
        return row[rule.columns[0]]
    if isinstance(rule.expectation, ColumnPairMapExpectation):
        return row[rule.columns[0]], row[rule.columns[1]]
    return {c: row[c] for c in rule.columns}


def _gx_result(exp: Expectation, values: Mapping[str, MetricValue], runtime: dict[str, Any],
               engine: Any) -> ExpectationValidationResult:
    """GX's own result for ``exp`` from the metric values computed above."""
    needed = exp.get_validation_dependencies(execution_engine=engine,
                                             runtime_configuration=dict(runtime)).metric_configurations
    unknown = sorted(name for name in needed if name not in values)
    if unknown:
        raise RowRuleError(f"{exp.expectation_type}: needs metrics {unknown}, which the one-pass evaluation does not compute")
    metrics = {config.id: values[name] for name, config in needed.items()}
    evr = exp.metrics_validate(metrics, runtime_configuration=dict(runtime), execution_engine=engine)
    evr.expectation_config = exp.configuration
    evr.exception_info = {"raised_exception": False, "exception_traceback": None, "exception_message": None}
    return evr
