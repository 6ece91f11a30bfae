"""The streaming mode: one long-lived process, one warm Spark session, gold seconds after a report.

``readiness stream`` starts the same Kafka -> bronze query as the scheduled ingest
(:func:`readiness.pipeline.ingest.start_ingest`: the same checkpoint, signature checks, dead letters and
insert-only MERGE on the source position) with a processing-time trigger instead of ``availableNow``.
Each micro-batch, inside ``foreachBatch`` and so before Spark commits it to the checkpoint:

1. writes the batch to bronze (:func:`readiness.pipeline.ingest.ingest_batch`);
2. refreshes every period the batch's reports name with
   :func:`readiness.orchestration.tasks.refresh_period`, the scheduled DAGs' own task body: the
   same quality gate, the same write-audit-publish order and the same period lock, so a failed gate
   publishes nothing for that period (recorded, the service carries on);
3. records the batch as a run of ``readiness_stream`` in ``ops_pipeline_runs``.

A crash anywhere in a batch leaves it uncommitted: on restart Spark replays it from the checkpoint,
bronze takes none of its events twice and the refresh, idempotent, runs again. The service holds the
``ingest`` lock for its whole life, so the scheduled ingest (same checkpoint) waits for it.

SIGTERM (or SIGINT) lets the running batch finish, at most ``stream_stop_timeout_s``, then stops the
query and exits 0. The health document (:mod:`readiness.orchestration.stream_health`) is rewritten at every
phase of a batch and every few seconds in between.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from readiness.orchestration.locks import lock
from readiness.orchestration.stream_health import health_path, iso, partition_lag, write_health
from readiness.settings import Settings

STREAM_DAG_ID = "readiness_stream"
HEARTBEAT_S = 2.0


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _progress(query: Any) -> dict[str, Any] | None:
    """The query's last progress as plain JSON data (pyspark 4's progress object carries its JSON form)."""
    progress = query.lastProgress
    return None if progress is None else json.loads(progress.json)


def gold_line(settings: Settings, period_id: str, top: int = 3) -> str:
    """One line on a period's published ranking, so the operator sees gold move batch after batch."""
    from readiness.pipeline.aggregate import ranking

    rows = ranking(settings, period_id)
    leaders = ", ".join(f"{r['rank']}. {r['province_name'] or r['province_code']} {r['readiness_index']:.3f}"
                        for r in rows[:top])
    return f"  gold {period_id}: {len(rows)} provinces ranked; {leaders or 'no ranking yet'}"


class StreamService:
    """The service's state between the main thread (heartbeats, signals) and the batch callback."""

    def __init__(self, settings: Settings, log: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.log = log
        self.path = health_path(settings)
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._in_batch = threading.Event()
        self.health: dict[str, Any] = {"state": "starting", "pid": None, "started_at": iso(_now()),
                                       "trigger_s": settings.stream_trigger_s, "in_batch": None,
                                       "last_batch": None, "last_gold_commit": None, "lag": {}, "error": None}

    # ---------------------------------------------------------------- health

    def _write(self, **changes: Any) -> None:
        with self._guard:
            self.health.update(changes, pid=os.getpid(), host=socket.gethostname(), heartbeat_at=iso(_now()))
            write_health(self.path, self.health)

    # ---------------------------------------------------------------- one micro-batch

    def on_batch(self, batch: Any, batch_id: int) -> None:
        from readiness.contracts.signing import KeyRegistry
        from readiness.orchestration.run_health import record_run, run_row
        from readiness.orchestration.tasks import refresh_period
        from readiness.pipeline.ingest import ingest_batch
        from readiness.quality.errors import QualityGateError

        self._in_batch.set()
        try:
            started = _now()
            self._write(in_batch={"batch_id": batch_id, "phase": "bronze", "since": iso(started)})
            # The registry as of this batch: a key revoked while the service runs refuses from the next batch.
            keys = KeyRegistry(self.settings.key_registry).snapshot()
            counts = ingest_batch(self.settings, keys, batch, with_periods=True)
            xcoms: dict[str, Any] = {"ingest": counts}
            states: dict[str, str] = {"ingest": "success"}
            failed: dict[str, str] = {}
            for period_id in counts["periods"]:
                self._write(in_batch={"batch_id": batch_id, "phase": f"refresh {period_id}", "since": iso(started)})
                try:
                    refreshed = refresh_period(self.settings, period_id)
                except QualityGateError as exc:  # nothing of the period was published; the others go on
                    failed[period_id] = " ".join(str(exc).split())[:500]
                    states[f"refresh {period_id}"] = "failed"
                    self.log(f"batch {batch_id}: the quality gate failed for {period_id}, nothing published: "
                             f"{failed[period_id]}")
                    continue
                xcoms[f"refresh {period_id}"] = refreshed
                states[f"refresh {period_id}"] = "success"
                gold = {t: v for t, v in refreshed["publish"]["delta_versions"].items() if t.startswith("gold_")}
                self._write(last_gold_commit={"period_id": period_id, "at": iso(_now()), "versions": gold})
                self.log(gold_line(self.settings, period_id))
            self._write(in_batch={"batch_id": batch_id, "phase": "record", "since": iso(started)})
            ended = _now()
            record_run(self.settings, run_row(run_id=f"stream-{batch_id}-{started:%Y%m%dT%H%M%S%fZ}",
                                              dag_id=STREAM_DAG_ID, started_at=started, ended_at=ended, xcoms=xcoms,
                                              task_states=states, consumer_lag=self.health.get("lag") or {}))
            last = {**counts, "batch_id": batch_id, "started_at": iso(started),
                    "ended_at": iso(ended), "failed_periods": failed}
            self._write(in_batch=None, last_batch=last)
            self.log(f"batch {batch_id}: {counts['events_in']} events in = {counts['bronze_rows']} bronze + "
                     f"{counts['target_plans']} target plans + {counts['dead_letters']} dead letters + "
                     f"{counts['already_in_bronze']} already in bronze; refreshed "
                     f"{', '.join(p for p in counts['periods'] if p not in failed) or 'nothing'} "
                     f"in {(ended - started).total_seconds():.1f} s")
        finally:
            self._in_batch.clear()

    # ---------------------------------------------------------------- the process

    def request_stop(self, signum: int = signal.SIGTERM, frame: Any = None) -> None:
        self._stop.set()

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (0) or until the query fails (1)."""
        from readiness.lake.spark import get_spark
        from readiness.pipeline.ingest import start_ingest

        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self._write(state="starting")
        with lock(self.settings, "ingest"):
            get_spark(self.settings)
            # Loaded once here rather than inside the first batch (Great Expectations takes seconds).
            import readiness.pipeline.aggregate  # noqa: F401
            import readiness.pipeline.validate  # noqa: F401

            query, checkpoint = start_ingest(self.settings, self.on_batch,
                                             {"processingTime": f"{self.settings.stream_trigger_s:g} seconds"})
            self._write(state="running", query_id=str(query.id), checkpoint=checkpoint.status)
            self.log(f"streaming: {self.settings.topic_reports} -> bronze -> gold every "
                     f"{self.settings.stream_trigger_s:g} s (checkpoint {checkpoint.status}); SIGTERM stops")
            while not self._stop.is_set() and query.isActive:
                self._stop.wait(HEARTBEAT_S)
                self._write(lag=partition_lag(_progress(query)))
            if query.isActive:
                return self._stop_query(query)
            error = query.exception()
            message = " ".join(str(error).split())[:1000] if error is not None else "the query ended"
            self._write(state="failed", error=message, in_batch=None)
            self.log(f"streaming failed: {message}")
            return 1

    def _stop_query(self, query: Any) -> int:
        """Let the running batch finish (bounded), then stop the query between batches."""
        self._write(state="stopping")
        deadline = time.monotonic() + self.settings.stream_stop_timeout_s
        while self._in_batch.is_set() and time.monotonic() < deadline:
            time.sleep(0.2)
        interrupted = self._in_batch.is_set()
        query.stop()
        self._write(state="stopped", in_batch=None, lag=partition_lag(_progress(query)))
        self.log("streaming stopped" + (" (the running batch was interrupted; it is replayed on restart)"
                                        if interrupted else ""))
        return 0


def serve(settings: Settings) -> int:
    return StreamService(settings).run()
