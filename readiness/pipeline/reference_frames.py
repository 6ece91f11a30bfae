"""Reference data (the indicator catalogue, the province mapping) as small Spark DataFrames."""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from readiness.domain.reference import indicators, province_mapping


def catalogue_frame(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [(i.code, i.rollup, i.scale, i.numerator_at_most_denominator, i.min_value, i.max_value) for i in indicators()],
        "code string, rollup string, scale double, numerator_at_most_denominator boolean, "
        "min_value double, max_value double")


def province_map_frame(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(sorted(province_mapping().items()), "former_code string, code_2025 string")
