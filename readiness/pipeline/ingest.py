"""Ingest: Kafka events -> ``bronze_report_events``, ``bronze_target_plans`` and ``bronze_dead_letters``.

Structured Streaming with the Kafka source and a checkpoint: a scheduled run (``availableNow``) reads
the offsets not yet consumed; the streaming service (:mod:`readiness.streaming.service`) runs the same
query with a processing-time trigger and writes each batch with the same :func:`ingest_batch`. Bronze is idempotent by source position, not by batch number
(:mod:`readiness.pipeline.source_positions`): each table is written with an insert-only MERGE on
(topic, partition, offset), then the batch's positions are recorded, so a crash at any point, a
replayed batch or a lost checkpoint never loses or doubles an event. Every message's signature is
checked before bronze (:mod:`readiness.transforms.signatures`) and every decoded record against the
contract's bounds; refused ones go to the dead letters with their reason. The counts are what Delta
committed: ``events_in`` (offsets read) = ``bronze_rows`` + ``target_plans`` + ``dead_letters`` +
``already_in_bronze`` (offsets read again after a checkpoint was set aside or a batch retried).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from kafka import KafkaConsumer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from readiness.contracts.signing import KeyRegistry
from readiness.lake import store
from readiness.lake.spark import get_spark
from readiness.lake.tables import BRONZE_REPORTS, BRONZE_TARGETS, DEAD_LETTERS, INGEST_CHECKPOINT
from readiness.ops.faults import fault_point
from readiness.ops.kafka_client import PIPELINE, PIPELINE_GROUP_PREFIX, kafka_python_config, spark_kafka_options
from readiness.pipeline.source_positions import (
    SOURCE_KEY,
    CheckpointState,
    batch_positions,
    lake_positions,
    prepare_checkpoint,
    record_positions,
    starting_offsets,
)
from readiness.settings import Settings
from readiness.transforms.decode import decode_messages, kafka_columns, split_decoded
from readiness.transforms.signatures import verify_signatures

COUNTS = ("events_in", "bronze_rows", "target_plans", "dead_letters", "already_in_bronze", "batches")


def topic_partitions(settings: Settings, topics: list[str]) -> dict[str, list[int]]:
    """The partition numbers of each topic, as the brokers report them."""
    consumer = KafkaConsumer(**kafka_python_config(settings, PIPELINE), enable_auto_commit=False)
    try:
        return {t: sorted(consumer.partitions_for_topic(t) or []) for t in topics}
    finally:
        consumer.close()


def ingest_batch(settings: Settings, keys: KeyRegistry, batch: DataFrame, with_periods: bool = False) -> dict[str, Any]:
    """Write one micro-batch of the Kafka source to bronze and record its positions; its counts
    (:data:`COUNTS`, ``batches`` 1) and, with ``with_periods``, ``periods``: the periods its reports
    name, whether or not they were already in bronze (a replayed batch refreshes them again)."""
    raw = kafka_columns(batch).persist()
    decoded = verify_signatures(decode_messages(raw, F.current_timestamp()), keys).persist()
    try:
        reports, targets, dead = split_decoded(decoded)
        fault_point(settings, "ingest:batch_decoded")
        written = {}
        for name, frame, partition_by in ((BRONZE_REPORTS, reports, ["period_id"]), (BRONZE_TARGETS, targets, None),
                                          (DEAD_LETTERS, dead, None)):
            written[name] = store.insert_new(frame, settings, name, SOURCE_KEY, partition_by)
            fault_point(settings, f"ingest:committed:{name}")
        record_positions(batch_positions(raw), settings, datetime.now(timezone.utc))
        fault_point(settings, "ingest:positions_recorded")
        read = raw.count()
        counts: dict[str, Any] = {
            "events_in": read, "bronze_rows": written[BRONZE_REPORTS], "target_plans": written[BRONZE_TARGETS],
            "dead_letters": written[DEAD_LETTERS], "already_in_bronze": read - sum(written.values()), "batches": 1}
        if with_periods:
            counts["periods"] = sorted(r[0] for r in reports.select("period_id").distinct().collect())
        return counts
    finally:
        decoded.unpersist()
        raw.unpersist()


def start_ingest(settings: Settings, on_batch: Callable[[DataFrame, int], None], trigger: dict[str, Any]
                 ) -> tuple[StreamingQuery, CheckpointState]:
    """Start the Kafka -> bronze query on the ingest's one checkpoint with ``trigger`` (``availableNow``
    for a scheduled run, ``processingTime`` for the streaming service); ``on_batch`` writes each batch.

    Both modes share the checkpoint, so a deployment can move from one to the other; they must not
    run at the same time (:func:`readiness.orchestration.locks.lock` ``"ingest"``).
    """
    spark = get_spark(settings)
    topics = [settings.topic_reports, settings.topic_targets]
    checkpoint = settings.checkpoint_dir / INGEST_CHECKPOINT
    state = prepare_checkpoint(checkpoint)
    reader = (spark.readStream.format("kafka")
              .options(**spark_kafka_options(settings, PIPELINE))
              .option("groupIdPrefix", PIPELINE_GROUP_PREFIX)
              .option("includeHeaders", "true")
              .option("subscribe", ",".join(topics))
              .option("failOnDataLoss", "true")
              .option("maxOffsetsPerTrigger", settings.ingest_max_offsets_per_batch))
    if state.status != "kept":  # a new checkpoint starts where the lake says, not at batch 0 of "earliest"
        reader = reader.option("startingOffsets",
                               starting_offsets(topic_partitions(settings, topics), lake_positions(spark, settings)))
    query = (reader.load().writeStream.foreachBatch(on_batch)
             .option("checkpointLocation", str(checkpoint))
             .trigger(**trigger)
             .start())
    return query, state


def ingest_reports(settings: Settings) -> dict[str, int | str]:
    """Read every offset not yet consumed into bronze (the scheduled mode); the counts."""
    keys = KeyRegistry(settings.key_registry).snapshot()  # the registry as of this run, for the decoders
    counts: dict[str, int | str] = dict.fromkeys(COUNTS, 0)

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        for name, value in ingest_batch(settings, keys, batch).items():
            counts[name] = int(counts[name]) + value

    query, state = start_ingest(settings, write_batch, {"availableNow": True})
    counts["checkpoint"] = state.status
    if state.problem:
        counts["checkpoint_problem"] = state.problem
    query.awaitTermination()
    if query.exception() is not None:
        raise RuntimeError(f"ingest failed: {query.exception()}")
    return counts
