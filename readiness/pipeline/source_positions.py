"""Where the ingest stands in the topics, kept in the lake itself so that no checkpoint can lose it.

The Structured Streaming checkpoint says which offsets the ingest has consumed; bronze says which it
holds. The two used to be tied only by the micro-batch number, so a lost or reset checkpoint started
again at batch 0, Delta skipped the "already written" batch and the new checkpoint marked those offsets
consumed: events lost for good. Now:

- every bronze table is written with an insert-only MERGE on the source position (topic, partition,
  offset), so an offset is in bronze at most once whatever the batch numbers say;
- after a batch's three tables are written, ``bronze_ingest_positions`` records the next offset of
  each partition the batch read (a lower bound on what bronze holds completely);
- a checkpoint that is missing or unreadable is set aside and the ingest starts from those
  positions (a partition never seen, from the earliest offset), never from ``earliest`` blindly and
  never past an offset bronze does not hold.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from readiness.lake import store
from readiness.lake.tables import INGEST_POSITIONS
from readiness.settings import Settings

SOURCE_KEY = ("topic", "partition", "offset")
EARLIEST = -2  # the Kafka source's "earliest" in a startingOffsets document


@dataclass(frozen=True)
class CheckpointState:
    """``fresh``: no batch was ever planned; ``kept``: readable, Spark resumes from it; ``set_aside``:
    unreadable, moved to ``moved_to`` (kept for the on-call engineer) and the ingest starts afresh."""
    status: str
    moved_to: Path | None = None
    problem: str | None = None


def _log_problem(directory: Path, version_lines: int) -> str | None:
    """What is wrong with a checkpoint log directory (``offsets`` or ``commits``), or None."""
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith(".") or entry.name.endswith(".tmp"):
            continue
        if not entry.name.isdigit():
            return f"{entry}: not a batch file"
        lines = entry.read_text(encoding="utf-8", errors="replace").splitlines()
        if len(lines) < version_lines or lines[0] != "v1":
            return f"{entry}: not a v1 log entry"
        for line in lines[1:]:
            try:
                json.loads(line)
            except ValueError:
                return f"{entry}: a line is not JSON"
    return None


def checkpoint_problem(path: Path) -> str | None:
    """Why Spark could not resume from the checkpoint at ``path``, or None (also when it is absent)."""
    if not path.exists():
        return None
    metadata = path / "metadata"
    if (path / "offsets").exists() and not metadata.exists():
        return f"{metadata}: missing"
    if metadata.exists():
        try:
            if "id" not in json.loads(metadata.read_text(encoding="utf-8").splitlines()[0]):
                return f"{metadata}: no query id"
        except (ValueError, IndexError):
            return f"{metadata}: not JSON"
    for name, lines in (("offsets", 3), ("commits", 2)):
        if (path / name).exists():
            problem = _log_problem(path / name, lines)
            if problem:
                return problem
    return None


def prepare_checkpoint(path: Path, now: datetime | None = None) -> CheckpointState:
    """Keep a readable checkpoint; set an unreadable one aside so the ingest restarts from the lake."""
    problem = checkpoint_problem(path)
    if problem is None:
        planned = (path / "offsets").exists() and any(p.name.isdigit() for p in (path / "offsets").iterdir())
        return CheckpointState("kept" if planned else "fresh")
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S%fZ")
    moved_to = path.with_name(f"{path.name}.unreadable-{stamp}")
    shutil.move(str(path), str(moved_to))
    return CheckpointState("set_aside", moved_to, problem)


def batch_positions(raw: DataFrame) -> DataFrame:
    """(topic, partition, next_offset) for each partition a micro-batch read."""
    return raw.groupBy("topic", "partition").agg((F.max("offset") + 1).alias("next_offset"))


def record_positions(positions: DataFrame, settings: Settings, recorded_at: datetime) -> None:
    """Move each partition's position forward (never back) in ``bronze_ingest_positions``."""
    rows = positions.withColumn("recorded_at", F.lit(recorded_at).cast("timestamp"))
    store.upsert_forward(rows, settings, INGEST_POSITIONS, ("topic", "partition"), "next_offset")


def lake_positions(spark: SparkSession, settings: Settings) -> dict[tuple[str, int], int]:
    """The recorded next offset of each (topic, partition); empty before the first batch."""
    if not store.exists(spark, settings, INGEST_POSITIONS):
        return {}
    rows = store.read(spark, settings, INGEST_POSITIONS).collect()
    return {(r["topic"], int(r["partition"])): int(r["next_offset"]) for r in rows}


def starting_offsets(partitions: dict[str, list[int]], positions: dict[tuple[str, int], int]) -> str:
    """The Kafka source's ``startingOffsets`` document: every partition of every topic, from its
    recorded position or, never seen, from the earliest offset."""
    return json.dumps({topic: {str(p): positions.get((topic, p), EARLIEST) for p in sorted(numbers)}
                       for topic, numbers in sorted(partitions.items())})
