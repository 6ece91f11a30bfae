"""``readiness query``: SQL over the gold tables in-process, as published now or at an earlier time.

The gold tables are registered in the Spark session under their own names and as
``readiness.<table>`` (so SQL written for the JDBC server runs unchanged), with the reference views
``ref_provinces`` and ``ref_indicators``. With ``as_of`` each table is pinned to the Delta version
that was current then (``versionAsOf``), which also gives one consistent snapshot per query.
"""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from readiness.analyst.catalog import LOCAL_TZ, AsOf, Snapshot, open_snapshot
from readiness.analyst.export import QueryResult
from readiness.settings import Settings


class QueryError(RuntimeError):
    """The SQL failed: Spark's message (first line), and which tables the snapshot left out."""


def quiet_spark_error_logs() -> None:
    """pyspark logs every SQL error with its JVM stack trace; the CLI prints one line instead."""
    import logging

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def result_from_dataframe(df, limit: int | None = None) -> QueryResult:
    """Collect a DataFrame. Timestamps come back as aware UTC datetimes, whatever the local zone."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampType

    if limit is not None:
        df = df.limit(limit)
    fields = df.schema.fields
    stamps = {i for i, f in enumerate(fields) if isinstance(f.dataType, TimestampType)}
    if stamps:
        # pyspark would turn timestamps into naive local times: take epoch microseconds instead.
        # Columns are renamed by position first, since a result's names can repeat.
        positional = df.toDF(*[f"_{i}" for i in range(len(fields))])
        df = positional.select(*[F.unix_micros(f"_{i}") if i in stamps else F.col(f"_{i}") for i in range(len(fields))])
    rows = []
    for row in df.collect():
        values = list(row)
        for i in stamps:
            if values[i] is not None:
                values[i] = datetime.fromtimestamp(values[i] / 1e6, timezone.utc)
        rows.append(tuple(values))
    return QueryResult([f.name for f in fields], [f.dataType.simpleString() for f in fields], rows)


def run_query(settings: Settings, sql: str, as_of: AsOf | None = None, limit: int | None = None,
              spark=None) -> tuple[QueryResult, Snapshot]:
    """Run one SQL statement over the gold tables (as of ``as_of``) and collect its result."""
    from pyspark.errors import PySparkException

    from readiness.lake.spark import get_spark

    spark = spark or get_spark(settings)
    snapshot = open_snapshot(spark, settings, as_of)
    try:
        result = result_from_dataframe(spark.sql(sql), limit)
    except PySparkException as exc:
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        notes = [f"{table} left out: {why}" for table, why in snapshot.left_out.items()]
        raise QueryError("\n".join([message, *notes])) from exc
    result.about = {
        "query": sql.strip(),
        "tables": snapshot.describe(),
        "as of": as_of.text if as_of else "latest",
        "run at": datetime.now(ZoneInfo(LOCAL_TZ)).isoformat(timespec="seconds") + f" ({LOCAL_TZ})",
        "lake": str(settings.lake_dir),
    }
    return result, snapshot
