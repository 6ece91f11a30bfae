"""Ingest: Kafka events -> ``bronze_report_events``, ``bronze_target_plans`` and ``bronze_dead_letters``.

Structured Streaming with the Kafka source, a checkpoint and the ``availableNow`` trigger: each run
reads exactly the offsets not yet committed, and each micro-batch is appended with Delta's idempotent
writes (txnAppId/txnVersion), so an event is never lost or written twice, even after a crash between
the Delta commit and the checkpoint. Every message's signature is checked before bronze
(:mod:`readiness.transforms.signatures`); refused ones go to the dead letters with their reason.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from readiness.contracts.signing import KeyRegistry
from readiness.lake import store
from readiness.lake.spark import get_spark
from readiness.lake.tables import BRONZE_REPORTS, BRONZE_TARGETS, DEAD_LETTERS
from readiness.ops.kafka_client import PIPELINE, PIPELINE_GROUP_PREFIX, spark_kafka_options
from readiness.settings import Settings
from readiness.transforms.decode import decode_messages, kafka_columns, split_decoded
from readiness.transforms.signatures import verify_signatures

MAX_OFFSETS_PER_BATCH = 200_000


def ingest_reports(settings: Settings) -> dict[str, int]:
    spark = get_spark(settings)
    keys = KeyRegistry(settings.key_registry).snapshot()  # the registry as of this run, for the decoders
    counts = {"events_in": 0, "bronze_rows": 0, "target_plans": 0, "dead_letters": 0, "batches": 0}

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        raw = kafka_columns(batch).persist()
        decoded = verify_signatures(decode_messages(raw, F.current_timestamp()), keys).persist()
        reports, targets, dead = split_decoded(decoded)
        store.append_once(reports, settings, BRONZE_REPORTS, "readiness-ingest-bronze", batch_id, ["period_id"])
        store.append_once(targets, settings, BRONZE_TARGETS, "readiness-ingest-targets", batch_id)
        store.append_once(dead, settings, DEAD_LETTERS, "readiness-ingest-dead-letters", batch_id)
        counts["events_in"] += raw.count()
        counts["bronze_rows"] += reports.count()
        counts["target_plans"] += targets.count()
        counts["dead_letters"] += dead.count()
        counts["batches"] += 1
        decoded.unpersist()
        raw.unpersist()

    stream = (spark.readStream.format("kafka")
              .options(**spark_kafka_options(settings, PIPELINE))
              .option("groupIdPrefix", PIPELINE_GROUP_PREFIX)
              .option("includeHeaders", "true")
              .option("subscribe", f"{settings.topic_reports},{settings.topic_targets}")
              .option("startingOffsets", "earliest")
              .option("failOnDataLoss", "true")
              .option("maxOffsetsPerTrigger", MAX_OFFSETS_PER_BATCH)
              .load())
    query = (stream.writeStream.foreachBatch(write_batch)
             .option("checkpointLocation", str(settings.checkpoint_dir / "ingest_reports"))
             .trigger(availableNow=True)
             .start())
    query.awaitTermination()
    if query.exception() is not None:
        raise RuntimeError(f"ingest failed: {query.exception()}")
    return counts
