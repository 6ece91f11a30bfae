"""No message can stop the ingest: 1,000+ hostile messages on the real broker, one ingest run.

Property: whatever bytes are on the topic, the ingest commits, and each message is in bronze or in
the dead letters with a reason, once; events sent after the hostile ones still arrive; the period
they touch still validates and publishes.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from readiness.contracts.producer import ReportProducer
from readiness.domain.periods import PERIOD_ID_PATTERN
from readiness.lake.tables import BRONZE_REPORTS, DEAD_LETTERS, SILVER_VALUES
from support.faults import INGEST, assert_exactly_once, record_fault, refresh_command, run_job, table_rows
from support.hostile_wire import base_report, send_corpus, wire_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hostile(isolated):
    settings = isolated("hostile_wire")
    cases = list(wire_corpus())
    sent = send_corpus(settings, cases)
    after = [base_report(900_000 + n) for n in range(3)]
    with ReportProducer(settings) as producer:
        assert producer.publish_reports(after).not_acknowledged == 0
    run = run_job(settings, INGEST)
    return settings, cases, sent + len(after), run, after


def test_the_ingest_commits_and_counts_reconcile(hostile):
    settings, cases, sent, run, _ = hostile
    result = run.result()
    assert len(cases) >= 1000
    assert result["events_in"] == sent
    assert result["bronze_rows"] + result["target_plans"] + result["dead_letters"] == sent
    assert result["already_in_bronze"] == 0
    assert_exactly_once(settings)


def test_each_dead_letter_has_a_reason_and_each_class_is_accounted_for(hostile):
    settings, cases, _, _, _ = hostile
    kinds = {}
    for case in cases:
        kinds.setdefault(case.value, case.kind)
    dead = table_rows(settings, DEAD_LETTERS, ["raw_value", "reason"])
    bronze = table_rows(settings, BRONZE_REPORTS, ["raw_value", "period_id"])
    assert all(r["reason"] for r in dead)
    outcome: dict[str, Counter] = defaultdict(Counter)
    for row in dead:
        outcome[kinds.get(row["raw_value"], "?")][row["reason"]] += 1
    for row in bronze:
        outcome[kinds.get(row["raw_value"], "valid")]["bronze"] += 1
    sent = Counter(c.kind for c in cases)
    for kind, count in sent.items():
        assert sum(outcome[kind].values()) == count, kind
    # Classes that can never be a valid report are dead letters only.
    for kind in ("random_bytes", "truncated", "unknown_fingerprint", "empty", "null", "control_character",
                 "over_long_string", "bad_period", "unsigned", "key_disagrees_with_body", "huge_value"):
        assert "bronze" not in outcome[kind], kind
    assert {r for r, _ in outcome["unsigned"].items()} == {"unsigned"}
    assert {r for r, _ in outcome["key_disagrees_with_body"].items()} == {"key_not_for_province"}
    assert {r for r, _ in outcome["bad_period"].items()} == {"bad_period"}
    # Every partition value in bronze is a period id.
    assert all(re.match(PERIOD_ID_PATTERN, r["period_id"]) for r in bronze)
    for kind in sorted(sent):
        record_fault(corpus="wire", kind=kind, sent=sent[kind], outcomes=dict(outcome[kind]))


def test_events_after_the_hostile_ones_arrive_and_the_period_publishes(hostile):
    settings, _, _, _, after = hostile
    bronze = table_rows(settings, BRONZE_REPORTS, ["event_id", "period_id"])
    assert {r["event_id"] for r in after} <= {r["event_id"] for r in bronze}
    refreshed = run_job(settings, refresh_command("2026Q3")).result()
    assert refreshed["validate"]["events_in"] == sum(r["period_id"] == "2026Q3" for r in bronze)
    assert {r["event_id"] for r in after} <= {r["event_id"] for r in table_rows(settings, SILVER_VALUES, ["event_id"])}
