"""Great Expectations gate for silver candidate report values.

The gate runs a GX 1.x expectation suite (``expectations/silver_report_values.json``)
against an in-memory Spark DataFrame with one row per reported indicator value.

* Row rules are GX map expectations (column map, column pair map, multicolumn map). Each
  failing row is identified by its key columns through GX's ``unexpected_index_list``
  (``result_format="COMPLETE"`` with ``unexpected_index_column_names``: every unexpected row's
  key and domain columns). Rules with ``meta.severity == "quarantine"`` quarantine those rows.
* The row rules are evaluated together in one pass over the batch
  (:mod:`readiness.quality.row_rules`: GX's own condition and domain for each rule, a handful of
  Spark jobs for the whole suite, GX's own ``metrics_validate`` for success and the result);
  the batch rules and any row rule with ``mostly`` go through GX's validation as they are.
* Batch rules (everything else, e.g. row count, table columns) and any rule with
  ``meta.severity == "fail_batch"`` fail the whole run with :class:`QualityGateError`.

The gate must never pass in silence, so besides GX's own ``success`` it checks that every
expectation in the suite was run exactly once, that no expectation raised (GX reports
metric errors in ``exception_info`` instead of raising), that each row rule's
``unexpected_index_list`` has ``unexpected_count`` entries, and (in :func:`quarantine_rows`)
that the quarantined rows for each rule number exactly GX's ``unexpected_count``.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any, Literal

import great_expectations as gx
from great_expectations.core.expectation_suite import ExpectationSuite, expectationSuiteSchema
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.expectations.expectation import Expectation
from great_expectations.validator.validation_statistics import calc_validation_statistics
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from readiness.quality import row_rules
from readiness.quality.errors import QualityGateError  # noqa: F401  (raised here, caught by the DAGs)
from readiness.quality.row_rules import domain_columns

#: A row is one indicator value of one report event.
KEY_COLUMNS: tuple[str, ...] = ("event_id", "indicator_code")

SEVERITY_QUARANTINE = "quarantine"
SEVERITY_FAIL_BATCH = "fail_batch"
SEVERITIES = (SEVERITY_QUARANTINE, SEVERITY_FAIL_BATCH)

Level = Literal["row", "batch"]

#: Columns of the quarantine table, in order.
QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType()),
        T.StructField("province_code", T.StringType()),
        T.StructField("unit_code", T.StringType()),
        T.StructField("period_id", T.StringType()),
        T.StructField("indicator_code", T.StringType()),
        T.StructField("rule", T.StringType(), nullable=False),
        T.StructField("observed_value", T.StringType()),
        T.StructField("expected", T.StringType(), nullable=False),
        T.StructField("severity", T.StringType(), nullable=False),
        T.StructField("run_id", T.StringType(), nullable=False),
        T.StructField("quarantined_at", T.TimestampType(), nullable=False),
    ]
)

# kwargs that name the rule's domain or steer GX rather than state what is expected
_NON_EXPECTED_KWARGS = frozenset(
    {"column", "column_A", "column_B", "column_list", "batch_id", "result_format", "catch_exceptions"}
)


class SuiteError(ValueError):
    """The suite file is not a usable GX 1.x expectation suite for this gate."""


@dataclass(frozen=True)
class RowFailure:
    """One failing row of a row rule, as reported by GX's ``unexpected_index_list``."""

    key: dict[str, Any]  # key column -> value
    observed: dict[str, Any]  # rule's domain column -> value

    @property
    def observed_value(self) -> str | None:
        """The observed value rendered as text (``None`` if the single domain value is null)."""
        if len(self.observed) == 1:
            (value,) = self.observed.values()
            return None if value is None else _render(value, exact=True)
        return ", ".join(f"{c}={_render(v, exact=True)}" for c, v in self.observed.items())


@dataclass(frozen=True)
class RuleOutcome:
    """What one expectation of the suite found in one batch."""

    expectation_type: str
    column: str | None  # the column, or comma-joined columns of a pair/multicolumn rule
    domain_columns: tuple[str, ...]
    kwargs: dict[str, Any]  # the suite's kwargs (no batch_id)
    level: Level
    severity: str
    success: bool
    unexpected_count: int | None = None
    element_count: int | None = None
    observed_value: Any = None  # batch rules: GX's observed_value
    failures: tuple[RowFailure, ...] = ()
    exception: str | None = None  # message of an exception GX caught for this expectation

    @property
    def rule(self) -> str:
        """``<expectation type>:<column(s)>``, or the bare type for table-level rules."""
        return f"{self.expectation_type}:{self.column}" if self.column else self.expectation_type

    @property
    def expected(self) -> str:
        return render_expected(self.kwargs)


@dataclass(frozen=True)
class GateResult:
    suite_name: str
    key_columns: tuple[str, ...]
    row_count: int
    outcomes: tuple[RuleOutcome, ...] = field(default_factory=tuple)
    # GX's own ExpectationSuiteValidationResult, kept for Data Docs.
    validation: Any = field(default=None, compare=False, repr=False)

    @property
    def errors(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if o.exception is not None]

    @property
    def batch_failures(self) -> list[RuleOutcome]:
        """Failed rules that fail the run: batch-level rules and rules marked ``fail_batch``."""
        return [
            o
            for o in self.outcomes
            if not o.success and (o.level == "batch" or o.severity == SEVERITY_FAIL_BATCH)
        ]

    @property
    def quarantine_outcomes(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if o.level == "row" and o.severity == SEVERITY_QUARANTINE]

    @property
    def passed(self) -> bool:
        return not self.errors and not self.batch_failures


# --------------------------------------------------------------------------- suite file


def bind_parameters(value: Any, parameters: Mapping[str, Any], where: str) -> Any:
    """Replace every ``{"$PARAMETER": name}`` in a suite document by ``parameters[name]``.

    Rules that depend on reference data (known indicator codes, province codes in force) keep
    the data out of the suite file; the job binds the current reference data when it loads it.
    """
    if isinstance(value, dict):
        if set(value) == {"$PARAMETER"}:
            name = value["$PARAMETER"]
            if name not in parameters:
                raise SuiteError(f"{where}: suite parameter {name!r} was not given")
            return parameters[name]
        return {k: bind_parameters(v, parameters, where) for k, v in value.items()}
    if isinstance(value, list):
        return [bind_parameters(v, parameters, where) for v in value]
    return value


def load_suite(path: Path, parameters: Mapping[str, Any] | None = None) -> ExpectationSuite:
    """Load a GX 1.x suite JSON (the ``suite.to_json_dict()`` format), binding its parameters.

    Loads the way GX's own file-backed ExpectationsStore does:
    ``ExpectationSuite(**expectationSuiteSchema.load(raw_dict))``. ``ExpectationSuite.__init__``
    only *logs* and drops an expectation it cannot build (unknown type, invalid kwargs), so
    the number of built expectations is checked against the file.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SuiteError(f"cannot read suite file {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: a suite file holds a JSON object")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(f"{path}: suite has no name")
    raw_expectations = raw.get("expectations")
    if not isinstance(raw_expectations, list) or not raw_expectations:
        raise SuiteError(f"{path}: suite {name!r} has no expectations")
    raw = bind_parameters(raw, parameters or {}, str(path))
    raw_expectations = raw["expectations"]
    try:
        suite = ExpectationSuite(**expectationSuiteSchema.load(raw))
    except Exception as exc:  # marshmallow / pydantic validation errors
        raise SuiteError(f"{path}: suite {name!r} is not a valid GX suite: {exc}") from exc
    if len(suite.expectations) != len(raw_expectations):
        built = Counter(e.expectation_type for e in suite.expectations)
        wanted = Counter(str(e.get("type")) for e in raw_expectations if isinstance(e, dict))
        dropped = sorted((wanted - built).elements())
        raise SuiteError(
            f"{path}: GX built {len(suite.expectations)} of {len(raw_expectations)} expectations; "
            f"dropped (unknown type or invalid kwargs): {dropped}"
        )
    _validate_suite(suite, str(path))
    return suite


def _validate_suite(suite: ExpectationSuite, where: str) -> None:
    problems: list[str] = []
    seen: set[str] = set()
    rule_names: set[str] = set()
    for exp in suite.expectations:
        cfg = exp.configuration
        severity = (exp.meta or {}).get("severity")
        label = f"{cfg.type}({_domain_label(cfg.kwargs) or ''})"
        rule = f"{cfg.type}:{_domain_label(cfg.kwargs)}" if _domain_label(cfg.kwargs) else cfg.type
        if rule in rule_names:
            problems.append(f"{label}: rule name {rule!r} is not unique, so its quarantine rows could not be told apart")
        rule_names.add(rule)
        if severity not in SEVERITIES:
            problems.append(f"{label}: meta.severity must be one of {SEVERITIES}, got {severity!r}")
        if severity == SEVERITY_QUARANTINE and _level(exp) != "row":
            problems.append(f"{label}: only row (map) expectations can quarantine rows")
        if severity == SEVERITY_QUARANTINE and cfg.kwargs.get("mostly", 1) != 1:
            problems.append(f"{label}: quarantine rules must not use 'mostly'")
        key = _config_key(cfg.type, cfg.kwargs)
        if key in seen:
            problems.append(f"{label}: duplicate expectation")
        seen.add(key)
    if problems:
        raise SuiteError(f"{where}: suite {suite.name!r}: " + "; ".join(problems))


# --------------------------------------------------------------------------- running


def run_suite(df: DataFrame, suite: ExpectationSuite, key_columns: Sequence[str] = KEY_COLUMNS) -> GateResult:
    """Validate ``df`` with ``suite`` in an ephemeral GX context.

    Returns one :class:`RuleOutcome` per expectation, in suite order. Raises
    :class:`QualityGateError` if any expectation errored or was not run, if GX's results are
    inconsistent, or if a batch-level / ``fail_batch`` rule failed.
    """
    key_columns = tuple(key_columns)
    if not key_columns:
        raise ValueError("key_columns must name at least one column")
    missing_keys = [c for c in key_columns if c not in df.columns]
    if missing_keys:
        raise QualityGateError(f"key columns {missing_keys} are not in the batch (columns: {df.columns})")
    _validate_suite(suite, "run_suite")
    row_count = df.count()

    batch = _batch(df)
    through_gx = [e.configuration for e in suite.expectations if not _in_one_pass(e)]
    validation = batch.validate(ExpectationSuite(name=suite.name, expectations=through_gx),
                                result_format=row_rules.result_format(key_columns))
    fused = [e for e in suite.expectations if _in_one_pass(e)]
    _merge_results(validation, suite, row_rules.evaluate(batch, fused, key_columns, row_count))
    problems: list[str] = []

    by_key: dict[str, list[Any]] = {}
    for res in validation.results:
        by_key.setdefault(_result_key(res), []).append(res)

    outcomes: list[RuleOutcome] = []
    for exp in suite.expectations:
        cfg = exp.configuration
        matches = by_key.pop(_config_key(cfg.type, cfg.kwargs), [])
        if len(matches) != 1:
            problems.append(f"{cfg.type}({_domain_label(cfg.kwargs)}): GX returned {len(matches)} results, expected 1")
            continue
        outcome = _outcome(exp, matches[0], key_columns)
        outcomes.append(outcome)
        problems.extend(_consistency_problems(outcome, row_count))
    for leftover in by_key.values():
        for res in leftover:
            problems.append(f"GX returned a result for an expectation not in the suite: {res.expectation_config.type}")
    stats = validation.statistics or {}
    if stats.get("evaluated_expectations") != len(suite.expectations):
        problems.append(
            f"GX evaluated {stats.get('evaluated_expectations')} expectations, the suite has {len(suite.expectations)}"
        )

    result = GateResult(
        suite_name=suite.name, key_columns=key_columns, row_count=row_count, outcomes=tuple(outcomes),
        validation=validation,
    )
    lines = [f"  {o.rule}: raised {o.exception}" for o in result.errors]
    lines += [f"  {p}" for p in problems]
    lines += [
        f"  {o.rule} [{o.expected}] failed: observed {_render_batch_observation(o)}"
        for o in result.batch_failures
        if o.exception is None
    ]
    if lines:
        raise QualityGateError(
            f"quality gate {suite.name!r} failed on {row_count} rows:\n" + "\n".join(lines), result
        )
    return result


def _batch(df: DataFrame) -> Any:
    """``df`` as the one batch of an ephemeral GX context's Spark data source."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    name = f"gate_{uuid.uuid4().hex}"
    return (
        context.data_sources.add_spark(name=name)
        .add_dataframe_asset(name=name)
        .add_batch_definition_whole_dataframe(name=name)
        .get_batch(batch_parameters={"dataframe": df})
    )


def _in_one_pass(exp: Expectation) -> bool:
    """Row rules without ``mostly`` go through :mod:`row_rules`; the others through GX's validation."""
    return _level(exp) == "row" and "mostly" not in exp.configuration.kwargs


def _merge_results(validation: Any, suite: ExpectationSuite, results: list[Any]) -> None:
    """Put the one-pass results of the row rules among GX's own, in suite order, and count them
    into the validation's statistics and success as GX does."""
    order = {_config_key(e.configuration.type, e.configuration.kwargs): i for i, e in enumerate(suite.expectations)}
    validation.results = sorted([*validation.results, *results],
                                key=lambda r: order.get(_result_key(r), len(order)))
    stats = calc_validation_statistics(validation.results)
    validation.statistics = {k: getattr(stats, k) for k in ("evaluated_expectations", "successful_expectations",
                                                             "unsuccessful_expectations", "success_percent")}
    validation.success = stats.success


def _outcome(exp: Expectation, res: Any, key_columns: tuple[str, ...]) -> RuleOutcome:
    cfg = exp.configuration
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id", "result_format")}
    domain = domain_columns(kwargs)
    level = _level(exp)
    body: Mapping[str, Any] = res.result or {}
    failures: list[RowFailure] = []
    if level == "row":
        for entry in body.get("unexpected_index_list") or []:
            failures.append(
                RowFailure(
                    key={c: entry.get(c) for c in key_columns},
                    observed={c: entry.get(c) for c in domain},
                )
            )
    return RuleOutcome(
        expectation_type=cfg.type,
        column=",".join(domain) if domain else None,
        domain_columns=domain,
        kwargs=kwargs,
        level=level,
        severity=str((exp.meta or {}).get("severity")),
        success=bool(res.success),
        unexpected_count=body.get("unexpected_count"),
        element_count=body.get("element_count"),
        observed_value=body.get("observed_value"),
        failures=tuple(failures),
        exception=_exception_message(res.exception_info),
    )


def _consistency_problems(o: RuleOutcome, row_count: int) -> list[str]:
    """Checks that catch a row rule that 'passed' without really being evaluated."""
    if o.level != "row" or o.exception is not None:
        return []
    problems: list[str] = []
    if o.element_count != row_count:
        problems.append(f"{o.rule}: GX element_count {o.element_count} != batch row count {row_count}")
    unexpected = o.unexpected_count
    if unexpected is None and row_count == 0:
        unexpected = 0  # GX reports unexpected_count=None on an empty batch
    if unexpected is None:
        problems.append(f"{o.rule}: GX returned no unexpected_count")
    elif len(o.failures) != unexpected:
        problems.append(
            f"{o.rule}: GX unexpected_index_list has {len(o.failures)} rows, unexpected_count is {unexpected}"
        )
    elif o.success != (unexpected == 0):
        problems.append(f"{o.rule}: GX success={o.success} with unexpected_count={unexpected}")
    return problems


def _exception_message(info: Any) -> str | None:
    """GX 1.x puts ``{"raised_exception": bool, ...}`` here, or, when metrics failed, a dict
    of metric id -> ``{"raised_exception": True, "exception_message": ...}``."""
    if not info:
        return None
    if isinstance(info, Mapping) and "raised_exception" in info:
        entries: list[Mapping[str, Any]] = [info]
    elif isinstance(info, Mapping):
        entries = [v for v in info.values() if isinstance(v, Mapping)]
        if len(entries) != len(info):
            return f"unrecognised exception_info: {info!r}"
    else:
        return f"unrecognised exception_info: {info!r}"
    messages = [str(e.get("exception_message")) for e in entries if e.get("raised_exception")]
    return "; ".join(sorted(set(messages))) if messages else None


# --------------------------------------------------------------------------- quarantine


def quarantine_rows(
    df: DataFrame,
    result: GateResult,
    key_columns: Sequence[str],
    run_id: str,
    quarantined_at: dt.datetime,
) -> DataFrame:
    """One row per (failing row, failed quarantine rule), with :data:`QUARANTINE_SCHEMA`.

    GX's failing entries (key columns plus each rule's domain columns) are joined back to
    ``df`` in one join: null-safe equality on the key columns, and on the rule's domain
    columns as well, so exactly the failing rows are picked even where a key is null or
    repeated. Raises :class:`QualityGateError` if, for any rule, the number of quarantined
    rows differs from GX's ``unexpected_count``.
    """
    key_columns = tuple(key_columns)
    spark = df.sparkSession
    outcomes = [o for o in result.quarantine_outcomes if o.failures]
    if not outcomes:
        _check_counts(result, {})
        return spark.createDataFrame([], QUARANTINE_SCHEMA)

    # One entry per distinct (rule, key values, domain values); domain columns that are not
    # key columns get a value column _d<i> and a flag _u<i> saying whether the rule uses it.
    domain_cols = list(dict.fromkeys(c for o in outcomes for c in o.domain_columns if c not in key_columns))
    entries: set[tuple[Any, ...]] = set()
    for o in outcomes:
        expected = o.expected
        for f in o.failures:
            values = {**f.key, **f.observed}
            entries.add(
                (o.rule, f.observed_value, expected, o.severity)
                + tuple(_hashable(values[c]) for c in key_columns)
                + tuple(_hashable(values.get(c)) for c in domain_cols)
                + tuple(c in o.domain_columns for c in domain_cols)
            )
    schema = T.StructType(
        [T.StructField(n, T.StringType(), nullable=n == "_observed") for n in ("_rule", "_observed", "_expected", "_severity")]
        + [T.StructField(f"_k{i}", df.schema[c].dataType) for i, c in enumerate(key_columns)]
        + [T.StructField(f"_d{i}", df.schema[c].dataType) for i, c in enumerate(domain_cols)]
        + [T.StructField(f"_u{i}", T.BooleanType()) for i in range(len(domain_cols))]
    )
    failing = spark.createDataFrame([_unhashable(e) for e in sorted(entries, key=repr)], schema)
    cond: Column = reduce(
        lambda a, b: a & b,
        [df[c].eqNullSafe(failing[f"_k{i}"]) for i, c in enumerate(key_columns)]
        + [~failing[f"_u{i}"] | df[c].eqNullSafe(failing[f"_d{i}"]) for i, c in enumerate(domain_cols)],
    )
    quarantine = df.join(F.broadcast(failing), cond, "inner").select(
        *(df[c].cast("string").alias(c) for c in ("event_id", "province_code", "unit_code", "period_id", "indicator_code")),
        failing["_rule"].alias("rule"),
        failing["_observed"].alias("observed_value"),
        failing["_expected"].alias("expected"),
        failing["_severity"].alias("severity"),
        F.lit(run_id).alias("run_id"),
        F.lit(quarantined_at).cast(T.TimestampType()).alias("quarantined_at"),
    )
    counted = {r["rule"]: r["n"] for r in quarantine.groupBy("rule").agg(F.count(F.lit(1)).alias("n")).collect()}
    _check_counts(result, counted)
    return quarantine


def _check_counts(result: GateResult, counted: Mapping[str, int]) -> None:
    mismatches = [
        f"  {o.rule}: quarantined {counted.get(o.rule, 0)} rows, GX unexpected_count {o.unexpected_count or 0}"
        for o in result.quarantine_outcomes
        if counted.get(o.rule, 0) != (o.unexpected_count or 0)
    ]
    unknown = sorted(set(counted) - {o.rule for o in result.quarantine_outcomes})
    mismatches += [f"  {rule}: quarantined rows for a rule GX did not report" for rule in unknown]
    if mismatches:
        raise QualityGateError("quarantine does not match GX's unexpected counts:\n" + "\n".join(mismatches), result)


def accepted_rows(df: DataFrame, quarantine_df: DataFrame) -> DataFrame:
    """Rows of ``df`` whose report (event_id) has no quarantine row; a null event_id is
    matched null-safely, so rows without an event id are dropped once any of them fails."""
    quarantined = quarantine_df.select(F.col("event_id").alias("_quarantined_event_id")).distinct()
    return df.join(quarantined, df["event_id"].eqNullSafe(quarantined["_quarantined_event_id"]), "left_anti")


# --------------------------------------------------------------------------- helpers


def render_expected(kwargs: Mapping[str, Any]) -> str:
    """``min_value=0, max_value=None``-style text of a rule's expectation kwargs."""
    items = {k: v for k, v in kwargs.items() if k not in _NON_EXPECTED_KWARGS}
    if "min_value" in items or "max_value" in items:
        items = {"min_value": items.pop("min_value", None), "max_value": items.pop("max_value", None), **items}
    return ", ".join(f"{k}={_render(v)}" for k, v in items.items())


def _render(value: Any, exact: bool = False) -> str:
    """Text of a value; ``exact=False`` (rule parameters) prints 0.0 as 0."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer() and not exact:
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(_render(v, exact) for v in value) + "]"
    return str(value)


def _render_batch_observation(o: RuleOutcome) -> str:
    if o.level == "row":
        return f"{o.unexpected_count} of {o.element_count} rows unexpected"
    return _render(o.observed_value)


def _level(exp: Expectation) -> Level:
    return "row" if isinstance(exp, row_rules.ROW_EXPECTATIONS) else "batch"


def _domain_label(kwargs: Mapping[str, Any]) -> str:
    return ",".join(domain_columns(kwargs))


def _result_key(res: Any) -> str:
    """The :func:`_config_key` of the expectation a GX validation result belongs to."""
    return _config_key(res.expectation_config.type, res.expectation_config.kwargs)


def _config_key(expectation_type: str, kwargs: Mapping[str, Any]) -> str:
    body = {k: v for k, v in kwargs.items() if k not in ("batch_id", "result_format")}
    return expectation_type + json.dumps(body, sort_keys=True, default=str)


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _unhashable(entry: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(list(v) if isinstance(v, tuple) else v for v in entry)
