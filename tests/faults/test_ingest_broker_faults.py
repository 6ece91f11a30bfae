"""The broker SIGKILLed while the ingest reads from it, then restarted: after the ingest is run
again, every acknowledged event is in bronze exactly once."""
from __future__ import annotations

import os
import signal
import threading
import time
from datetime import datetime, timezone

import pytest

from readiness.contracts.producer import ReportProducer
from readiness.lake.tables import INGEST_POSITIONS
from support.faults import INGEST, assert_exactly_once, record_fault, run_job, table_rows, topic_offsets
from support.reports import report_event

pytestmark = pytest.mark.slow

EVENTS = 3_000
BATCH = 300  # ten micro-batches, so the broker dies between two of them


def test_broker_killed_mid_ingest_then_restarted(own_broker):
    broker = own_broker("ingest-broker", ingest_max_offsets_per_batch=BATCH)
    settings = broker.settings
    t0 = datetime(2026, 10, 5, 8, 0, tzinfo=timezone.utc)
    values = [{"indicator_code": "computers_per_100_staff", "numerator": 90.0, "denominator": 100.0}]
    reports = [report_event(n, "38", "38", "PROVINCE", values, "2026Q3", t0)
               for n in range(1, EVENTS + 1)]
    with ReportProducer(settings) as producer:
        assert producer.publish_reports(reports).not_acknowledged == 0

    outcome = {}
    job = threading.Thread(target=lambda: outcome.update(run=run_job(settings, INGEST, timeout=600)))
    job.start()
    deadline = time.monotonic() + 300
    while not table_rows(settings, INGEST_POSITIONS) and time.monotonic() < deadline and job.is_alive():
        time.sleep(0.5)  # bounded: until the first batch is recorded
    assert job.is_alive(), "the ingest ended before the broker could be killed"
    os.kill(broker.pid(), signal.SIGKILL)
    killed_at = time.monotonic()
    time.sleep(5)
    broker.kafka.start()
    job.join(timeout=700)
    first = outcome["run"]
    start = time.monotonic()
    run_job(settings, INGEST).result()
    lost, doubled = assert_exactly_once(settings)
    assert len(topic_offsets(settings)) == EVENTS
    record_fault(fault="broker SIGKILL mid-ingest, restarted after 5 s",
                 injected="SIGKILL of the broker's pid after the first of ten batches",
                 runs=2, events_in=EVENTS, lost=lost, doubled=doubled, first_run_exit=first.returncode,
                 first_run_seconds=round(first.seconds, 1),
                 recover_seconds=round(time.monotonic() - killed_at, 1),
                 second_run_seconds=round(time.monotonic() - start, 1))
