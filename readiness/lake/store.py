"""Delta Lake reads and writes used by the jobs: partition overwrites, so reruns are harmless."""
from __future__ import annotations

from pathlib import Path

from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
    ProtocolChangedException,
)
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import MapType

from readiness.lake.log import table_version
from readiness.settings import Settings

# Delta's optimistic-concurrency conflicts: another writer committed first; the write may be retried.
COMMIT_CONFLICTS: tuple[type[Exception], ...] = (
    ConcurrentAppendException, ConcurrentDeleteDeleteException, ConcurrentDeleteReadException,
    ConcurrentTransactionException, ConcurrentWriteException, DeltaConcurrentModificationException,
    MetadataChangedException, ProtocolChangedException)


def exists(spark: SparkSession, settings: Settings, name: str) -> bool:
    return DeltaTable.isDeltaTable(spark, settings.table_path(name))


def read(spark: SparkSession, settings: Settings, name: str, version: int | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(settings.table_path(name))


def version(spark: SparkSession, settings: Settings, name: str) -> int | None:
    """Current Delta version of a table, or None if it does not exist yet."""
    if not exists(spark, settings, name):
        return None
    return int(DeltaTable.forPath(spark, settings.table_path(name)).history(1).collect()[0]["version"])


def overwrite_partition(df: DataFrame, settings: Settings, name: str, column: str, value: str) -> None:
    """Replace exactly the rows where ``column == value`` (an empty ``df`` clears them)."""
    (df.write.format("delta").mode("overwrite")
       .option("replaceWhere", f"{column} = '{value}'")
       .partitionBy(column)
       .save(settings.table_path(name)))


def _write_new(df: DataFrame, path: str, partition_by: list[str] | None) -> None:
    writer = df.write.format("delta").mode("append").option("mergeSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)


def _last_metric(spark: SparkSession, path: str, metric: str) -> int:
    operation = DeltaTable.forPath(spark, path).history(1).collect()[0]["operationMetrics"] or {}
    return int(operation.get(metric, 0))


def _merge_on(df: DataFrame, path: str, key: tuple[str, ...]):
    """A MERGE of ``df`` (``s``) into the table at ``path`` (``t``), rows matched on ``key``."""
    condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in key)
    return DeltaTable.forPath(df.sparkSession, path).alias("t").merge(df.alias("s"), condition)


def insert_new(df: DataFrame, settings: Settings, name: str, key: tuple[str, ...],
               partition_by: list[str] | None = None) -> int:
    """Insert the rows whose ``key`` the table does not hold yet (an insert-only MERGE) and return
    how many Delta committed: the count of what was written, not of what was offered.

    Rerunning the same rows inserts nothing, whatever produced them, so a retried or replayed
    batch cannot double a row. The table gains columns as the contract grows (schema evolution).
    The caller holds the table's writer lock (the ingest lock).
    """
    spark, path = df.sparkSession, settings.table_path(name)
    if not exists(spark, settings, name):
        _write_new(df, path, partition_by)  # a rerun after a crash here finds the table and merges
        return _last_metric(spark, path, "numOutputRows")
    if df.isEmpty():
        return 0
    before = table_version(Path(path))
    (_merge_on(df, path, key)
     .whenNotMatchedInsertAll().withSchemaEvolution().execute())
    # A MERGE that inserts nothing commits nothing: the last commit is then an earlier batch's.
    return 0 if table_version(Path(path)) == before else _last_metric(spark, path, "numTargetRowsInserted")


def upsert_forward(df: DataFrame, settings: Settings, name: str, key: tuple[str, ...], column: str) -> None:
    """Insert new keys and raise ``column`` where ``df`` holds a larger value; never lower it."""
    spark, path = df.sparkSession, settings.table_path(name)
    if not exists(spark, settings, name):
        _write_new(df, path, None)
        return
    (_merge_on(df, path, key)
     .whenMatchedUpdateAll(condition=f"s.`{column}` > t.`{column}`").whenNotMatchedInsertAll().execute())


def replace_partition(df: DataFrame, settings: Settings, name: str, column: str, value: str,
                      lineage_columns: tuple[str, ...] = ()) -> bool:
    """Overwrite the partition only if its content would change; return whether it was written.

    A rerun over unchanged inputs then leaves the table and its Delta version exactly as they
    were, so published versions stay valid references. ``lineage_columns`` (run ids, input
    versions) are left out of the comparison: they describe how a row was made, not what it says.
    """
    spark = df.sparkSession
    if exists(spark, settings, name):
        current = read(spark, settings, name).where(f"{column} = '{value}'")
        compared = [c for c in df.columns if c not in lineage_columns]
        if sorted(current.columns) == sorted(df.columns):
            if same_rows(_comparable(df.select(*compared)), _comparable(current.select(*compared))):
                return False
    overwrite_partition(df, settings, name, column, value)
    return True


def same_rows(new: DataFrame, old: DataFrame) -> bool:
    """Whether ``new`` and ``old`` (the same columns) hold the same rows, duplicates counted.

    One aggregation over both, each row counted +1 on one side and -1 on the other: what
    ``new.exceptAll(old)`` and ``old.exceptAll(new)`` both empty say, in one Spark job instead of
    two scans of each side. Grouping treats nulls as equal and NaN as equal, as ``exceptAll`` does.
    """
    side = "__same_rows_side"
    tagged = new.withColumn(side, F.lit(1)).unionByName(old.withColumn(side, F.lit(-1)))  # by name: any order
    return tagged.groupBy(*[F.col(f"`{c}`") for c in new.columns]).agg(F.sum(side).alias(side)).where(
        F.col(side) != 0).isEmpty()


def _comparable(df: DataFrame) -> DataFrame:
    """Map columns as sorted entry arrays: Spark's set operations do not accept maps."""
    return df.select(*[F.array_sort(F.map_entries(f.name)).alias(f.name) if isinstance(f.dataType, MapType)
                       else F.col(f.name) for f in df.schema.fields])
