"""Each Great Expectations suite loads with its rules, passes a clean batch and fails its must-fail batch."""
from __future__ import annotations

from datetime import datetime

import pytest

from readiness.domain.periods import parse_period
from readiness.pipeline.aggregate import GOLD_SUITE
from readiness.pipeline.validate import BRONZE_SUITE, SILVER_SUITE, suite_parameters
from readiness.quality.gate import QualityGateError, load_suite, run_suite

T0 = datetime(2026, 9, 18, 3, 0)
BRONZE = ("topic string, partition int, offset long, event_id string, period_id string, ingested_at timestamp, "
          "writer_schema string")
GOLD = ("basis string, methodology_id string, province_code string, readiness_index double, rank int")


@pytest.mark.parametrize("path, parameters, count", [
    (BRONZE_SUITE, None, 7),
    (SILVER_SUITE, suite_parameters(parse_period("2026Q3")), 28),
    (GOLD_SUITE, None, 7),
])
def test_suite_files_load_with_all_their_rules(path, parameters, count):
    assert len(load_suite(path, parameters).expectations) == count


def test_bronze_suite(spark):
    suite = load_suite(BRONZE_SUITE)
    clean = [("t", 0, 1, "e1", "2026Q3", T0, "report_submission.avsc"), ("t", 0, 2, "e2", "2026Q3", T0, "report_submission.avsc")]
    assert run_suite(spark.createDataFrame(clean, BRONZE), suite, ("event_id",)).passed
    doubled = clean + [("t", 0, 2, "e2", "2026Q3", T0, "report_submission.avsc")]  # one Kafka record twice
    with pytest.raises(QualityGateError, match="expect_compound_columns_to_be_unique"):
        run_suite(spark.createDataFrame(doubled, BRONZE), suite, ("event_id",))
    with pytest.raises(QualityGateError, match="expect_table_row_count_to_be_between"):
        run_suite(spark.createDataFrame([], BRONZE), suite, ("event_id",))


def test_gold_suite(spark):
    suite = load_suite(GOLD_SUITE)
    clean = [("restated_2025", "ict-index", "38", 0.8, 1), ("restated_2025", "ict-index", "25", 0.7, 2)]
    assert run_suite(spark.createDataFrame(clean, GOLD), suite, ("basis", "methodology_id", "province_code")).passed
    broken = [("restated_2025", "ict-index", "38", 1.2, 1), ("restated_2025", "ict-index", "25", 0.7, 64)]
    with pytest.raises(QualityGateError) as caught:
        run_suite(spark.createDataFrame(broken, GOLD), suite, ("basis", "methodology_id", "province_code"))
    assert "readiness_index" in str(caught.value) and "rank" in str(caught.value)
