"""The compare-then-write of ``store.replace_partition`` on tiny Delta tables."""
from __future__ import annotations

import pytest

from readiness.lake import store
from readiness.settings import load_settings

SCHEMA = "period_id string, province_code string, value double, run_id string, notes map<string,string>"


@pytest.fixture()
def settings(tmp_path):
    return load_settings(env="ci", var_dir=tmp_path)


def frame(spark, rows):
    return spark.createDataFrame(rows, SCHEMA)


@pytest.mark.parametrize(("new", "old", "same"), [
    ([("01", 1.0), ("02", 2.0)], [("02", 2.0), ("01", 1.0)], True),  # order does not matter
    ([("01", 1.0), ("01", 1.0)], [("01", 1.0)], False),  # a duplicate counts
    ([("01", 1.0)], [("01", 1.0), ("01", 1.0)], False),
    ([("01", 1.0)], [("01", 1.5)], False),
    ([(None, float("nan"))], [(None, float("nan"))], True),  # nulls and NaN equal themselves
    ([("01", None)], [("01", 0.0)], False),
    ([], [], True),
    ([("01", 1.0)], [], False),
])
def test_same_rows_compares_as_multisets(spark, new, old, same):
    schema = "province_code string, value double"
    assert store.same_rows(spark.createDataFrame(new, schema), spark.createDataFrame(old, schema)) is same


def test_replace_partition_writes_only_a_changed_partition(spark, settings):
    name = "gold_example"
    first = frame(spark, [("2026Q3", "01", 1.0, "run-1", {"b": "2", "a": "1"}),
                          ("2026Q3", "02", 2.0, "run-1", {}),
                          ("2026Q2", "01", 9.0, "run-0", {})])
    store.overwrite_partition(first.where("period_id = '2026Q2'"), settings, name, "period_id", "2026Q2")
    assert store.replace_partition(first.where("period_id = '2026Q3'"), settings, name, "period_id", "2026Q3",
                                   lineage_columns=("run_id",))
    written = store.version(spark, settings, name)

    # The same rows in another order, from another run, with the map built the other way round.
    rerun = frame(spark, [("2026Q3", "02", 2.0, "run-2", {}), ("2026Q3", "01", 1.0, "run-2", {"a": "1", "b": "2"})])
    assert not store.replace_partition(rerun, settings, name, "period_id", "2026Q3", lineage_columns=("run_id",))
    assert store.version(spark, settings, name) == written

    changed = frame(spark, [("2026Q3", "01", 1.0, "run-3", {"a": "1", "b": "2"})])
    assert store.replace_partition(changed, settings, name, "period_id", "2026Q3", lineage_columns=("run_id",))
    rows = {(r["period_id"], r["province_code"], r["value"])
            for r in store.read(spark, settings, name).collect()}
    assert rows == {("2026Q3", "01", 1.0), ("2026Q2", "01", 9.0)}
    assert store.version(spark, settings, name) == written + 1


def test_same_rows_matches_columns_by_name(spark):
    schema = "province_code string, value double"
    new = spark.createDataFrame([("01", 1.0), ("02", 2.0)], schema)
    assert store.same_rows(new, new.select("value", "province_code"))
    assert not store.same_rows(new, spark.createDataFrame([("01", 2.0), ("02", 1.0)], schema).select("value", "province_code"))


def test_insert_new_counts_what_this_merge_inserted_not_the_last_commit(spark, settings):
    name = "bronze_example"
    schema = "topic string, partition int, offset long, value string"
    key = ("topic", "partition", "offset")
    first = spark.createDataFrame([("t", 0, 0, "a"), ("t", 0, 1, "b")], schema)
    second = spark.createDataFrame([("t", 0, 1, "b"), ("t", 0, 2, "c")], schema)
    assert store.insert_new(first, settings, name, key) == 2
    assert store.insert_new(second, settings, name, key) == 1
    written = store.version(spark, settings, name)
    # A replayed batch: every key already held. The MERGE commits nothing, so the last commit is the
    # previous batch's, which inserted one row: that count is not this call's.
    assert store.insert_new(second, settings, name, key) == 0
    assert store.version(spark, settings, name) == written
    assert sorted(r["offset"] for r in store.read(spark, settings, name).collect()) == [0, 1, 2]
