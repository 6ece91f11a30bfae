"""The names of the Delta tables, layer by layer: the one source of them (no pyspark here, so the DAG
processor, ``readiness status`` and the analysts' fast readers can import it)."""
from __future__ import annotations

BRONZE_REPORTS = "bronze_report_events"
DEAD_LETTERS = "bronze_dead_letters"
BRONZE_TARGETS = "bronze_target_plans"
# The ingest's next offset per topic partition, recorded after each batch (see pipeline.source_positions).
INGEST_POSITIONS = "bronze_ingest_positions"
# The ingest's Structured Streaming checkpoint under Settings.checkpoint_dir: one for the scheduled ingest
# and the streaming service, which never run at the same time.
INGEST_CHECKPOINT = "ingest_reports"
SILVER_VALUES = "silver_indicator_values"
QUARANTINE = "silver_quarantine"
WARNINGS = "silver_warnings"
VALIDATION_RUNS = "silver_validation_runs"
GOLD_VALUES = "gold_indicator_values"
GOLD_INDEX = "gold_readiness_index"
GOLD_COMPLETENESS = "gold_reporting_completeness"
GOLD_ATTAINMENT = "gold_target_attainment"
# The register of the gold versions recorded when a period closes.
FREEZES = "gold_period_freezes"
# Run health: one row per pipeline run.
OPS_RUNS = "ops_pipeline_runs"
# One row per period: the gold versions of its last complete publication (written after all four).
GOLD_PUBLICATIONS = "ops_gold_publications"

BRONZE_PREFIX, SILVER_PREFIX, GOLD_PREFIX, OPS_PREFIX = "bronze_", "silver_", "gold_", "ops_"
# The tables analysts read (the published layer; the freeze register is bookkeeping).
GOLD_TABLES = (GOLD_VALUES, GOLD_INDEX, GOLD_COMPLETENESS, GOLD_ATTAINMENT)

# Kafka source columns as bronze keeps them.
KAFKA_COLUMNS = ["topic", "partition", "offset", "kafka_timestamp", "kafka_key", "raw_value"]

QUARANTINE_COLUMNS = ["event_id", "province_code", "unit_code", "period_id", "indicator_code", "rule",
                      "observed_value", "expected", "severity", "quarantined_at"]
