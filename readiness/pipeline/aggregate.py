"""Aggregate: ``silver_indicator_values`` -> gold tables for one period.

- ``gold_indicator_values``: value per province, indicator and period, "as reported" (units in force
  then) and "restated" to the 2025 provinces (counts re-summed, ratios recomputed from the sums).
- ``gold_readiness_index``: index, sub-indexes and competition rank per province, methodology and basis.
- ``gold_reporting_completeness``: expected, received, on time, late and missing reports per province.
- ``gold_target_attainment``: actual against each province's plan target for the period's year.

Every table is overwritten for the period only, so rerunning a period leaves the same tables. The four
tables are four Delta commits: a crash between them leaves a period partly republished, which the
rerun completes. ``ops_gold_publications`` is written last, with the version of each gold table, so
a reader can tell a complete publication from one in progress (and read the versions it names).
"""
from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from readiness.domain.bases import AS_REPORTED, BASES, DEFAULT_BASIS, RESTATED_2025, province_names_for
from readiness.domain.periods import parse_period
from readiness.domain.reference import units_open_on
from readiness.domain.scoring import available_methodologies, load_methodology, rank_rows
from readiness.lake import store
from readiness.lake.spark import get_spark
from readiness.lake.tables import (
    BRONZE_REPORTS,
    BRONZE_TARGETS,
    GOLD_ATTAINMENT,
    GOLD_COMPLETENESS,
    GOLD_INDEX,
    GOLD_PUBLICATIONS,
    GOLD_VALUES,
    SILVER_VALUES,
)
from readiness.ops.faults import fault_point
from readiness.pipeline.reference_frames import catalogue_frame, province_map_frame
from readiness.quality.gate import load_suite, run_suite
from readiness.settings import PROJECT_ROOT, Settings
from readiness.transforms.aggregate import (
    latest_revisions,
    province_indicator_values,
    reporting_completeness,
    restate_provinces,
)
from readiness.transforms.targets import attainment, latest_targets

GOLD_SUITE = PROJECT_ROOT / "expectations" / "gold_readiness_index.json"
TARGET_PLAN_COLUMNS = ("event_id string, province_code string, plan_year int, plan_reference string, "
                       "targets array<struct<indicator_code:string,target_value:double,comparison:string>>, "
                       "revision int, submitted_at timestamp")

INDEX_SCHEMA = StructType([
    StructField("period_id", StringType()),
    StructField("basis", StringType()),
    StructField("methodology_id", StringType()),
    StructField("methodology_version", StringType()),
    StructField("province_code", StringType()),
    StructField("province_name", StringType()),
    StructField("components", MapType(StringType(), DoubleType())),
    StructField("readiness_index", DoubleType()),
    StructField("rank", IntegerType()),
    StructField("previous_rank", IntegerType()),
    StructField("rank_change", IntegerType()),
    StructField("input_table", StringType()),
    StructField("input_version", LongType()),
])
PUBLICATION_SCHEMA = StructType([
    StructField("period_id", StringType()),
    StructField("silver_version", LongType()),
    StructField("gold_versions", MapType(StringType(), LongType())),
    StructField("published_at", TimestampType()),
])


def index_rows(values: list[dict], period_id: str, basis: str, names: dict[str, str],
               previous_ranks: dict[tuple[str, str], int], input_version: int | None) -> list[tuple]:
    """Rows of ``gold_readiness_index`` for every shipped methodology, from collected gold values."""
    by_province: dict[str, dict[str, float]] = {}
    for row in values:
        by_province.setdefault(row["province_code"], {})[row["indicator_code"]] = row["value"]
    result = []
    for methodology_id in available_methodologies():
        methodology = load_methodology(methodology_id)
        for row in rank_rows(methodology, by_province):
            previous = previous_ranks.get((methodology.id, row.unit))
            result.append((period_id, basis, methodology.id, methodology.version, row.unit,
                           names.get(row.unit), {k: v for k, v in row.components.items() if v is not None},
                           row.index, row.rank, previous, None if previous is None else previous - row.rank,
                           SILVER_VALUES, input_version))
    return result


def _attainment(spark: SparkSession, settings: Settings, period, values: DataFrame) -> DataFrame:
    """Attainment of the province plans for the period's year, against the values as reported."""
    empty_plans = spark.createDataFrame([], TARGET_PLAN_COLUMNS)
    plans = store.read(spark, settings, BRONZE_TARGETS) if store.exists(spark, settings, BRONZE_TARGETS) else empty_plans
    actual = values.where(F.col("basis") == AS_REPORTED)
    return attainment(latest_targets(plans, period.year), actual)


def _gold_values(spark: SparkSession, latest: DataFrame) -> DataFrame:
    catalogue = catalogue_frame(spark)
    restated = restate_provinces(latest, province_map_frame(spark))
    return province_indicator_values(latest, catalogue, AS_REPORTED).unionByName(
        province_indicator_values(restated, catalogue, RESTATED_2025))


def _gold_index(spark: SparkSession, settings: Settings, period, values: DataFrame,
                silver_version: int | None) -> DataFrame:
    previous = {}
    if store.exists(spark, settings, GOLD_INDEX):
        prior = store.read(spark, settings, GOLD_INDEX).where(F.col("period_id") == period.previous().id).collect()
        previous = {(r["basis"], r["methodology_id"], r["province_code"]): r["rank"] for r in prior}
    collected = [r.asDict() for r in values.collect()]
    rows: list[tuple] = []
    for basis in BASES:
        basis_previous = {(m, p): rank for (b, m, p), rank in previous.items() if b == basis}
        rows += index_rows([r for r in collected if r["basis"] == basis], period.id, basis,
                           province_names_for(basis, period.window()[1]), basis_previous, silver_version)
    return spark.createDataFrame(rows, INDEX_SCHEMA)


def _gold_completeness(spark: SparkSession, settings: Settings, period) -> DataFrame:
    """Completeness against the units open at the end of the period's data window, both bases."""
    expected = spark.createDataFrame([(u.province_code, u.code) for u in units_open_on(period.window()[1])],
                                     "province_code string, unit_code string")
    submissions = (store.read(spark, settings, BRONZE_REPORTS).where(F.col("period_id") == period.id)
                   .select("province_code", "unit_code", "kafka_timestamp"))  # receipt time decides
    province_map = province_map_frame(spark)
    parts = []
    for basis in BASES:
        if basis == RESTATED_2025:
            expected, submissions = restate_provinces(expected, province_map), restate_provinces(submissions, province_map)
        part = reporting_completeness(expected, submissions, period.deadline_utc().isoformat(), "kafka_timestamp")
        parts.append(part.select(F.lit(period.id).alias("period_id"), F.lit(period.report_type).alias("report_type"),
                                 F.lit(basis).alias("basis"), "*"))
    return parts[0].unionByName(parts[1])


def aggregate_period(settings: Settings, period_id: str) -> dict[str, int]:
    spark = get_spark(settings)
    period = parse_period(period_id)
    silver_version = store.version(spark, settings, SILVER_VALUES)
    silver = store.read(spark, settings, SILVER_VALUES, silver_version).where(F.col("period_id") == period_id)
    latest = latest_revisions(silver).persist()
    values = _gold_values(spark, latest).persist()
    index = _gold_index(spark, settings, period, values, silver_version)
    completeness = _gold_completeness(spark, settings, period)
    targets = _attainment(spark, settings, period, values).select(F.lit(period_id).alias("period_id"), "*")

    # Audit before publishing: a failed gold check raises here and no gold table changes.
    run_suite(index, load_suite(GOLD_SUITE), ("basis", "methodology_id", "province_code"))
    tables = ((GOLD_VALUES, values), (GOLD_INDEX, index), (GOLD_COMPLETENESS, completeness), (GOLD_ATTAINMENT, targets))
    written = {}
    for table, frame in tables:
        written[table] = store.replace_partition(frame, settings, table, "period_id", period_id)
        fault_point(settings, f"aggregate:written:{table}")
    _record_publication(spark, settings, period_id, silver_version, written)
    counts = {"gold_values": values.count(), "index_rows": index.count(), "completeness_rows": completeness.count(),
              "target_rows": targets.count(), "silver_version": silver_version or 0}
    latest.unpersist()
    values.unpersist()
    return counts


def _record_publication(spark: SparkSession, settings: Settings, period_id: str, silver_version: int | None,
                        written: dict[str, bool]) -> None:
    """Register the period's complete publication: for each gold table, the version that last wrote
    the period (a table left unchanged keeps the version the previous publication named)."""
    previous: dict[str, int] = {}
    if store.exists(spark, settings, GOLD_PUBLICATIONS):
        rows = store.read(spark, settings, GOLD_PUBLICATIONS).where(F.col("period_id") == period_id).collect()
        previous = dict(rows[0]["gold_versions"]) if rows else {}
    versions = {table: previous[table] if not changed and table in previous else store.version(spark, settings, table)
                for table, changed in written.items()}
    row = (period_id, silver_version, versions, datetime.now(timezone.utc))
    store.replace_partition(spark.createDataFrame([row], PUBLICATION_SCHEMA), settings, GOLD_PUBLICATIONS,
                            "period_id", period_id, lineage_columns=("published_at", "silver_version"))


def ranking(settings: Settings, period_id: str, methodology_id: str = "ict-index",
            basis: str = DEFAULT_BASIS) -> list[dict]:
    """The published ranking of a period, ordered by rank then province code."""
    spark = get_spark(settings)
    rows = (store.read(spark, settings, GOLD_INDEX)
            .where((F.col("period_id") == period_id) & (F.col("methodology_id") == methodology_id)
                   & (F.col("basis") == basis))
            .orderBy("rank", "province_code").collect())
    return [r.asDict() for r in rows]


