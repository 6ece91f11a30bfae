"""Validate: ``bronze_report_events`` of one period -> ``silver_indicator_values`` + ``silver_quarantine``
+ ``silver_warnings`` + ``silver_validation_runs``.

Write, audit, publish: the period's candidate rows are conformed and audited, and only then written.

1. The bronze suite checks the snapshot itself (batch level: offsets unique, ids present).
2. The silver suite (Great Expectations) checks every value; reference data in force for the period
   (indicators, provinces, units) is bound into it.
3. The cross-indicator validation rules (``data/validation_rules.json``) check each report.
4. Outliers against each unit's own history are flagged as warnings.
5. The gate policy (``data/gate_policy.json``) says what each failure does: quarantine the report,
   warn, or fail the batch; and how large a share of a province's reports may be quarantined
   before the province is held back (``transforms.holdback``).

A failed batch raises before anything is written, so neither silver nor gold changes. A report is
the unit of acceptance: if any of its values fails a quarantine rule, the whole report is
quarantined (one row per failure) until the province sends a higher revision, which supersedes it.
An exact re-delivery of an event id (the same bytes) is dropped and counted apart; an event id
reused for other content is quarantined as ``duplicate_event_id``.

A province over its quarantine share is held back, the others publish: its accepted reports not
yet in silver wait (a ``held_back`` row with status ``held`` in ``silver_quarantine`` for each,
with the province's counts and share), its rows already in silver for the period are carried over
unchanged, and its quarantine rows are written as for any province. Per period::

    events_in = events_accepted + events_quarantined + events_held_back + events_duplicate

Every row written derives from the bronze snapshot read (its Delta version is in the run id) and,
for a held province, from the silver rows already published, so rerunning a period over the same
bronze data writes the same rows.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from readiness.domain.periods import Period, default_calendar, parse_period
from readiness.domain.reference import indicators, provinces_in_force, units_open_on
from readiness.lake import store
from readiness.lake.schemas import VALIDATION_RUN_SCHEMA
from readiness.lake.spark import get_spark
from readiness.lake.tables import BRONZE_REPORTS, QUARANTINE, SILVER_VALUES, VALIDATION_RUNS, WARNINGS
from readiness.ops.faults import fault_point
from readiness.pipeline.reference_frames import catalogue_frame
from readiness.quality.data_docs import build_data_docs
from readiness.quality.gate import (
    KEY_COLUMNS,
    GateResult,
    QualityGateError,
    accepted_rows,
    load_suite,
    quarantine_rows,
    run_suite,
)
from readiness.quality.policy import GatePolicy, load_policy, load_validation_rules
from readiness.settings import PROJECT_ROOT, Settings
from readiness.transforms.clocks import clock_warnings
from readiness.transforms.conform import (
    add_rule_columns,
    duplicate_quarantine_rows,
    explode_values,
    split_duplicate_events,
    split_redeliveries,
)
from readiness.transforms.holdback import HELD_BACK, held_back_findings, hold_back, over_share, province_shares
from readiness.transforms.outliers import outlier_warnings
from readiness.transforms.rules import rule_violations

EXPECTATIONS = PROJECT_ROOT / "expectations"
SILVER_SUITE = EXPECTATIONS / "silver_report_values.json"
BRONZE_SUITE = EXPECTATIONS / "bronze_report_events.json"
# The SHA-256 of a bronze event's encoded bytes, which tells an exact re-delivery from a reused event id.
CONTENT_DIGEST = "content_sha256"
# Columns added only for the suite to check; silver keeps reported_value.
RULE_ONLY_COLUMNS = ("numerator_limit", "valid_min", "valid_max", "unit_key", "period_opens_at", "finite_numbers")
# The declared time may run this far ahead of the broker's receipt (clock skew), or this far behind
# it, before a report gets a warning (timeliness is judged on the receipt either way).
CLOCK_SKEW = timedelta(minutes=5)
DECLARED_MAX_AGE = timedelta(days=7)
FINDING_COLUMNS = ["event_id", "province_code", "unit_code", "period_id", "indicator_code", "rule", "observed_value",
                   "expected", "severity"]
# The silver_validation_runs row of exact re-deliveries (dropped, so without quarantine rows).
EXACT_REDELIVERY = "exact_redelivery"


def suite_parameters(period: Period) -> dict[str, list[str]]:
    """Reference data in force for the period, bound into the suite's rules when the job loads it."""
    window_end = period.window()[1]
    return {
        "indicator_codes": sorted(i.code for i in indicators()),
        "province_codes": sorted(p.code for p in provinces_in_force(window_end)),
        "unit_keys": sorted(f"{u.province_code}|{u.code}" for u in units_open_on(window_end)),
    }


def audited(df: DataFrame, suite, key_columns, settings: Settings, period_id: str, run_name: str) -> GateResult:
    """Run a suite and build its Data Docs page, for passing and failing runs alike."""
    try:
        result = run_suite(df, suite, key_columns)
    except QualityGateError as exc:
        if exc.result is not None and exc.result.validation is not None:
            build_data_docs(exc.result, settings.var_dir / "data_docs", run_name, period_id)
        raise
    build_data_docs(result, settings.var_dir / "data_docs", run_name, period_id)
    return result


def suite_findings(candidates: DataFrame, result: GateResult, policy: GatePolicy) -> tuple[DataFrame, DataFrame]:
    """(quarantine findings, warning findings) of the silver suite's row rules, after the policy."""
    rows = quarantine_rows(candidates, result, KEY_COLUMNS, "-", datetime(1970, 1, 1)).select(*FINDING_COLUMNS)
    warn_rules = [o.rule for o in result.outcomes if policy.suite_action(o.rule, o.severity) == "warn"]
    rows = rows.withColumn("severity", F.lit("high"))
    return rows.where(~F.col("rule").isin(warn_rules)), rows.where(F.col("rule").isin(warn_rules))


def rule_findings(candidates: DataFrame, policy: GatePolicy) -> tuple[DataFrame, DataFrame]:
    """(quarantine findings, warning findings) of the cross-indicator validation rules."""
    rules = load_validation_rules(known_indicators={i.code for i in indicators()})
    found = rule_violations(candidates, rules).persist()
    action = F.create_map(*[x for k, v in policy.validation_rule_actions.items() for x in (F.lit(k), F.lit(v))])
    found = found.withColumn("_action", action[F.col("severity")])
    if found.where(F.col("_action") == "fail_batch").limit(1).count():
        broken = [r.rule for r in found.where(F.col("_action") == "fail_batch").select("rule").distinct().collect()]
        raise QualityGateError(f"validation rules whose policy fails the batch were broken: {sorted(broken)}")
    return (found.where(F.col("_action") == "quarantine").drop("_action"),
            found.where(F.col("_action") == "warn").drop("_action"))


def history_frame(spark: SparkSession, settings: Settings, period: Period) -> DataFrame:
    """Each unit's accepted values in earlier periods of the same report type (latest revision)."""
    empty = spark.createDataFrame([], "unit_code string, indicator_code string, report_type string, "
                                      "period_id string, reported_value double")
    if not store.exists(spark, settings, SILVER_VALUES):
        return empty
    earlier = (store.read(spark, settings, SILVER_VALUES)
               .where((F.col("report_type") == period.report_type) & (F.col("period_id") < period.id)))
    order = Window.partitionBy("unit_code", "indicator_code", "period_id").orderBy(
        F.col("revision").desc(), F.col("submitted_at").desc())
    return (earlier.withColumn("_n", F.row_number().over(order)).where(F.col("_n") == 1)
            .select("unit_code", "indicator_code", "report_type", "period_id", "reported_value"))


def published_rows(spark: SparkSession, settings: Settings, period_id: str, provinces: list[str],
                   like: DataFrame) -> DataFrame:
    """The period's silver rows of ``provinces`` as published so far (none, with ``like``'s columns,
    before the first publication or when no province is given)."""
    if not provinces or not store.exists(spark, settings, SILVER_VALUES):
        return like.limit(0)
    return (store.read(spark, settings, SILVER_VALUES)
            .where((F.col("period_id") == period_id) & F.col("province_code").isin(provinces)))


def held_back_summary(over: DataFrame, waiting: DataFrame, max_share: float) -> list[dict[str, Any]]:
    """Per province held back: its events, quarantined events, share, the limit and the reports held back."""
    waiting_by = {r.province_code: int(r.n) for r in
                  waiting.groupBy("province_code").agg(F.countDistinct("event_id").alias("n")).collect()}
    return [{"province_code": r.province_code, "events": int(r.events), "quarantined": int(r.quarantined),
             "share": round(float(r.share), 4), "max_share": max_share,
             "events_held_back": waiting_by.get(r.province_code, 0)}
            for r in over.orderBy("province_code").collect()]


def with_status(findings: DataFrame, candidates: DataFrame, accepted: DataFrame) -> DataFrame:
    """Add report_type, revision and status: ``held`` for a report held back with its province,
    ``superseded`` once an accepted report of the same unit and period has a higher revision, else
    ``open`` (also for an event id reused for other content: that report was not taken)."""
    events = candidates.select("event_id", "report_type", "revision").distinct()
    newest = (accepted.groupBy("province_code", "unit_code", "report_type", "period_id")
              .agg(F.max("revision").alias("_accepted_revision")))
    joined = (findings.join(events, "event_id", "left")
              .join(newest, ["province_code", "unit_code", "report_type", "period_id"], "left"))
    status = (F.when(F.col("rule") == HELD_BACK, "held")
              .when(F.col("_accepted_revision") > F.col("revision"), "superseded").otherwise("open"))
    return joined.withColumn("status", status).drop("_accepted_revision")


def validate_period(settings: Settings, period_id: str) -> dict[str, Any]:
    """Validate the period's bronze snapshot into silver; the counts (see the module doc), and
    ``held_back_provinces`` (:func:`held_back_summary`, empty when no province is held back)."""
    spark = get_spark(settings)
    period = parse_period(period_id)
    policy = load_policy()
    bronze_version = store.version(spark, settings, BRONZE_REPORTS)
    if bronze_version is None:
        raise RuntimeError(f"no {BRONZE_REPORTS} table under {settings.lake_dir}: run the ingest job first")
    # Cached without the encoded bytes: at national scale they are most of the period's bronze and
    # overflowed a 2 GB driver while Spark built the cache. Re-deliveries compare their digest.
    bronze = (store.read(spark, settings, BRONZE_REPORTS, bronze_version).where(F.col("period_id") == period_id)
              .withColumn(CONTENT_DIGEST, F.sha2(F.col("raw_value"), 256)).drop("raw_value").persist())
    audited(bronze.drop("values", CONTENT_DIGEST), load_suite(BRONZE_SUITE), ("event_id",), settings, period_id,
            f"bronze@{bronze_version}")

    first, later = split_duplicate_events(bronze)
    repeated, conflicting = split_redeliveries(first, later, content=CONTENT_DIGEST)
    opens_at = datetime.combine(period.window()[0], time(0), ZoneInfo(default_calendar().timezone))
    candidates = add_rule_columns(explode_values(first), catalogue_frame(spark), opens_at.isoformat()).persist()
    run_id = f"validate:{period_id}:bronze@{bronze_version}"
    # The newest arrival in the snapshot stands for "when": it is the same on every rerun.
    audited_at = candidates.agg(F.max("ingested_at")).collect()[0][0]

    result = audited(candidates, load_suite(SILVER_SUITE, suite_parameters(period)), KEY_COLUMNS, settings,
                     period_id, f"bronze@{bronze_version}")
    suite_quarantine, suite_warnings = suite_findings(candidates, result, policy)
    rules_quarantine, rules_warnings = rule_findings(candidates, policy)
    failed = suite_quarantine.unionByName(rules_quarantine).persist()

    accepted = accepted_rows(candidates, failed).drop(*RULE_ONLY_COLUMNS).persist()
    over = over_share(province_shares(first, failed), policy.max_quarantined_share,
                      policy.min_events_for_share).persist()
    held = [r.province_code for r in over.select("province_code").collect()]
    to_publish, waiting = hold_back(accepted, published_rows(spark, settings, period_id, held, accepted), held)
    waiting = waiting.persist()
    held_rows = held_back_findings(waiting, over, policy.max_quarantined_share, policy.min_events_for_share)
    outliers = outlier_warnings(accepted, history_frame(spark, settings, period), policy.outlier_threshold,
                                policy.outlier_min_history, policy.outlier_max_history)
    duplicates = duplicate_quarantine_rows(conflicting).withColumn("severity", F.lit("high")).select(*FINDING_COLUMNS)
    stamp = [F.lit(run_id).alias("run_id"), F.lit(audited_at).cast("timestamp").alias("quarantined_at")]
    quarantine = with_status(failed.unionByName(duplicates).unionByName(held_rows.select(*FINDING_COLUMNS)),
                             candidates, accepted).select("*", *stamp).persist()
    # On the accepted reports (a quarantined one already has its reason): declared far from received.
    accepted_events = first.join(accepted.select("event_id").distinct(), "event_id", "left_semi")
    clocks = clock_warnings(accepted_events, CLOCK_SKEW, DECLARED_MAX_AGE).select(*FINDING_COLUMNS)
    warnings = with_status(suite_warnings.unionByName(rules_warnings).unionByName(outliers).unionByName(clocks),
                           candidates,
                           accepted).select("*", *stamp).withColumnRenamed("quarantined_at", "flagged_at").persist()

    store.replace_partition(to_publish, settings, SILVER_VALUES, "period_id", period_id)
    fault_point(settings, f"validate:written:{SILVER_VALUES}")
    store.replace_partition(quarantine, settings, QUARANTINE, "period_id", period_id, lineage_columns=("run_id",))
    fault_point(settings, f"validate:written:{QUARANTINE}")
    store.replace_partition(warnings, settings, WARNINGS, "period_id", period_id, lineage_columns=("run_id",))
    fault_point(settings, f"validate:written:{WARNINGS}")

    events_held_back = waiting.select("event_id").distinct().count()
    counts: dict[str, Any] = {
        "events_in": bronze.count(),
        # Accepted and published: a held province's reports already in silver stay published.
        "events_accepted": accepted.select("event_id").distinct().count() - events_held_back,
        # A reused event id shares it with an earlier delivery, so count deliveries.
        "events_quarantined": failed.select("event_id").distinct().count() + conflicting.count(),
        "events_held_back": events_held_back,
        "events_duplicate": repeated.count(),
        "rows_in": candidates.count(),
        "quarantine_rows": quarantine.count(),
        "warnings": warnings.count(),
        "bronze_version": bronze_version,
        "held_back_provinces": held_back_summary(over, waiting, policy.max_quarantined_share),
    }
    _write_summary(spark, settings, period_id, run_id, audited_at, result, quarantine, warnings, counts)
    for frame in (bronze, candidates, failed, accepted, over, waiting, quarantine, warnings):
        frame.unpersist()
    return counts


def _write_summary(spark: SparkSession, settings: Settings, period_id: str, run_id: str, audited_at: datetime,
                   result: GateResult, quarantine: DataFrame, warnings: DataFrame, counts: dict[str, Any]) -> None:
    """One row per rule of the run: suite rules from GX's outcomes, the others from their findings
    (``held_back`` with action ``hold``), and exact re-deliveries (``exact_redelivery``, ``drop``)."""
    totals = (counts["rows_in"], counts["events_in"], counts["events_accepted"], counts["events_quarantined"],
              counts["warnings"])
    rows = [(period_id, run_id, o.rule, o.level, o.severity, bool(o.success), int(o.unexpected_count or 0), *totals,
             audited_at) for o in result.outcomes]
    suite_rules = {o.rule for o in result.outcomes}
    for frame, action in ((quarantine, "quarantine"), (warnings, "warn")):
        for r in frame.where(~F.col("rule").isin(list(suite_rules))).groupBy("rule").count().collect():
            rows.append((period_id, run_id, r["rule"], "report", "hold" if r["rule"] == HELD_BACK else action, False,
                         int(r["count"]), *totals, audited_at))
    if counts["events_duplicate"]:
        rows.append((period_id, run_id, EXACT_REDELIVERY, "report", "drop", False, counts["events_duplicate"], *totals,
                     audited_at))
    runs = spark.createDataFrame(rows, VALIDATION_RUN_SCHEMA)
    store.replace_partition(runs, settings, VALIDATION_RUNS, "period_id", period_id)
