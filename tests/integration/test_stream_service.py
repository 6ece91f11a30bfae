"""The streaming service as a real process against the real broker: reports published while it runs
reach gold, a bad one reaches quarantine, a forged and an undecodable one reach the dead letters, and
counts reconcile; SIGKILL mid-batch and a restart leave bronze exactly once and the gold of an
undisturbed run; SIGTERM mid-batch lets the batch finish and stops within the bound. The same input
through the scheduled mode's functions (``readiness pipeline``, another lake) gives the same gold."""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from readiness.contracts.encoding import encode
from readiness.contracts.producer import ReportProducer
from readiness.contracts.signing import signer_for
from readiness.domain.bases import DEFAULT_BASIS
from readiness.lake.tables import BRONZE_REPORTS, DEAD_LETTERS, GOLD_TABLES, GOLD_VALUES, OPS_RUNS, QUARANTINE
from readiness.ops.kafka_client import province_principal
from readiness.orchestration.stream_health import health_path, read_health
from readiness.streaming.service import STREAM_DAG_ID
from support.faults import assert_exactly_once, bronze_positions, canonical_rows, run_job, table_rows
from support.forging import send, signed_headers
from support.reports import report_event
from support.stream import StreamProcess

pytestmark = pytest.mark.slow

PERIOD = "2026Q3"
ON_TIME = datetime(2026, 9, 18, 3, 0, tzinfo=timezone.utc)
STOP_TIMEOUT_S = 90.0
# After SIGTERM: the running batch (bounded by the service's stop timeout), then the query's and
# Spark's own shutdown.
STOP_BOUND_S = STOP_TIMEOUT_S + 45


def computers(event: int, province: str, unit: str, numerator: float, denominator: float,
              revision: int = 0) -> dict:
    values = [{"indicator_code": "computers_per_100_staff", "numerator": numerator, "denominator": denominator,
               "value": None, "unit": None}]
    return report_event(event, province, unit, "AGENCY", values, PERIOD, ON_TIME, revision, source_system="stream-test")


WAVE_1 = [computers(1, "38", "38.S01", 90, 100), computers(2, "38", "38.S02", 30, 50),
          computers(4, "25", "25.S01", 120, 100)]
# More email users than civil servants: quarantined.
BAD = report_event(5, "25", "25.S02", "AGENCY", [{"indicator_code": "staff_using_official_email", "numerator": 60,
                                                   "denominator": 50, "value": None, "unit": None}],
                   PERIOD, ON_TIME, 0, source_system="stream-test")
FORGED = computers(6, "38", "38.S03", 99, 100)  # 38's figures signed with Hà Nội's key
WAVE_2 = [computers(3, "38", "38.S02", 40, 50, revision=1), computers(7, "01", "01.S01", 70, 100)]
WAVE_3 = [computers(8, "79", "79.S01", 55, 100)]


@dataclass
class Streamed:
    settings: object
    baseline: object
    killed_in: str = ""
    freshness_s: list[float] = field(default_factory=list)
    term_code: int | None = None
    term_seconds: float = 0.0
    term_phase: str = ""
    health_after: dict = field(default_factory=dict)


def publish_forged(settings) -> None:
    value = encode(FORGED)
    send(settings, province_principal("01"), "38", value, signed_headers(signer_for("01", settings.private_keys_dir), value))


def publish(settings, reports: list[dict], garbage: bool = False) -> None:
    with ReportProducer(settings) as producer:
        sent = producer.publish_reports(reports)
        if garbage:  # signed with province 25's key, but not a report
            sent = sent.merge(producer.send_raw(settings.topic_reports, [("25", b"\xc3\x01garbage")]))
    assert sent.not_acknowledged == 0


def settled(settings, events: int):
    """Bronze holds ``events`` offsets (reports and dead letters), and after that the health says no batch
    runs: the batch that wrote the last of them (it marks itself before it writes) has ended."""
    def ready(_: dict) -> bool:
        if len(bronze_positions(settings)) != events:
            return False
        health = read_health(health_path(settings)) or {}
        return health.get("in_batch") is None and bool(health.get("last_batch"))
    return ready


@pytest.fixture(scope="module")
def streamed(isolated, tmp_path_factory) -> Streamed:
    settings = dataclasses.replace(isolated("stream"), stream_trigger_s=1.0, stream_stop_timeout_s=STOP_TIMEOUT_S)
    service = StreamProcess(settings)
    result = Streamed(settings, None)
    try:
        service.start()
        service.wait_for("the running state", lambda h: h.get("state") == "running")

        # Wave 1: good reports, a bad one, a forged one, an undecodable one.
        sent = time.monotonic()
        publish(settings, [*WAVE_1, BAD], garbage=True)
        publish_forged(settings)
        service.wait_for("wave 1 in gold", settled(settings, 6))
        result.freshness_s.append(time.monotonic() - sent)

        # Wave 2, killed while a batch refreshes the period (bronze committed, gold not yet).
        publish(settings, WAVE_2)
        running = service.wait_for("a refresh to start", lambda h: (h.get("in_batch") or {}).get("phase", "")
                                   .startswith("refresh"))
        service.kill()
        result.killed_in = running["in_batch"]["phase"]
        service.start()
        service.wait_for("the replayed batch", settled(settings, 8))

        # Wave 3, SIGTERM while its batch refreshes the period: the batch finishes, then the service stops.
        publish(settings, WAVE_3)
        running = service.wait_for("a refresh to start", lambda h: (h.get("in_batch") or {}).get("phase", "")
                                   .startswith("refresh"))
        result.term_phase = running["in_batch"]["phase"]
        result.term_code, result.term_seconds = service.terminate(STOP_BOUND_S + 30)
        result.health_after = service.health()
    finally:
        service.stop()

    # The same topics, undisturbed, through the scheduled mode's task bodies in another lake.
    baseline = dataclasses.replace(settings, var_dir=tmp_path_factory.mktemp("stream-baseline"))
    run = run_job(baseline, [sys.executable, "-m", "readiness.cli", "pipeline", PERIOD], timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    result.baseline = baseline
    return result


def test_reports_published_while_it_runs_reach_gold(streamed):
    rows = {(r["province_code"], r["indicator_code"]): (r["numerator_sum"], r["denominator_sum"])
            for r in table_rows(streamed.settings, GOLD_VALUES)
            if r["period_id"] == PERIOD and r["basis"] == DEFAULT_BASIS}
    # 38.S02's revision 1 (40 of 50) replaces revision 0; 38.S03's forged 99 never counts.
    assert rows == {("38", "computers_per_100_staff"): (130.0, 150.0), ("25", "computers_per_100_staff"): (120.0, 100.0),
                    ("01", "computers_per_100_staff"): (70.0, 100.0), ("79", "computers_per_100_staff"): (55.0, 100.0)}


def test_a_bad_report_reaches_quarantine_with_its_reason(streamed):
    quarantined = {(r["event_id"][-12:], r["unit_code"], r["rule"]) for r in table_rows(streamed.settings, QUARANTINE)}
    assert quarantined == {
        ("000000000005", "25.S02", "expect_column_pair_values_a_to_be_greater_than_b:numerator_limit,numerator"),
        ("000000000005", "25.S02", "expect_column_pair_values_a_to_be_greater_than_b:valid_max,reported_value")}


def test_a_forged_and_an_undecodable_message_reach_the_dead_letters(streamed):
    reasons = sorted((r["kafka_key"], r["reason"]) for r in table_rows(streamed.settings, DEAD_LETTERS))
    assert reasons == [("25", "truncated"), ("38", "key_not_for_province")]


def test_every_offset_is_in_bronze_once_after_the_kill_and_the_restart(streamed):
    assert streamed.killed_in == f"refresh {PERIOD}"
    assert assert_exactly_once(streamed.settings) == (0, 0)
    assert len(bronze_positions(streamed.settings)) == 9


def test_the_batches_counts_reconcile(streamed):
    runs = [r for r in table_rows(streamed.settings, OPS_RUNS) if r["dag_id"] == STREAM_DAG_ID]
    total = {k: sum(r[k] for r in runs) for k in ("events_in", "bronze_rows", "target_plans", "dead_letters",
                                                  "already_in_bronze")}
    assert all(r["events_in"] == r["bronze_rows"] + r["target_plans"] + r["dead_letters"] + r["already_in_bronze"]
               for r in runs)
    # Nine offsets, each in one recorded batch: the killed batch recorded nothing, and its replay found
    # its events already in bronze (the killed batch had committed them).
    assert total["events_in"] == 9 and total["dead_letters"] == 2 and total["target_plans"] == 0
    assert total["already_in_bronze"] >= 1
    assert total["bronze_rows"] + total["already_in_bronze"] == len(table_rows(streamed.settings, BRONZE_REPORTS)) == 7


def test_sigterm_mid_batch_finishes_the_batch_and_stops_within_the_bound(streamed):
    assert streamed.term_phase == f"refresh {PERIOD}"
    assert streamed.term_code == 0
    assert streamed.term_seconds < STOP_BOUND_S
    assert streamed.health_after["state"] == "stopped" and streamed.health_after["in_batch"] is None
    assert PERIOD in streamed.health_after["last_batch"]["periods"]
    assert streamed.health_after["last_gold_commit"]["period_id"] == PERIOD


def gold(settings, name: str) -> list[str]:
    """A gold table's rows of the period without ``input_version``, the silver version a row was computed
    from: the stream wrote silver once per batch, the baseline once."""
    return canonical_rows([{k: v for k, v in r.items() if k != "input_version"}
                           for r in table_rows(settings, name) if r["period_id"] == PERIOD])


def test_gold_equals_the_scheduled_mode_on_the_same_input(streamed):
    for name in GOLD_TABLES:
        assert gold(streamed.settings, name) == gold(streamed.baseline, name), name
    assert gold(streamed.settings, GOLD_VALUES)  # something was compared
    assert sorted(bronze_positions(streamed.settings)) == sorted(bronze_positions(streamed.baseline))
