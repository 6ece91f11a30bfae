"""`readiness publish` with the broker failing under it: killed (SIGKILL) or frozen (SIGSTOP) mid-send,
or not there at all. Each time the command exits 1 within a bound, without a traceback, with counts
that add up to the file's events and the ids of those not acknowledged; sending those again after
the broker is back leaves every event id of the file on the topic (copies allowed: the ingest drops
exact re-deliveries).

The tests run their own broker (``own_broker``: own ports, own var dir), never the session's, since
they kill it. So that "mid-send" is a real moment and not a race with a send that takes a fraction of a second,
the province's principal gets a produce quota (a slow provincial link): the broker lets a first
burst of requests through, then throttles the connection for longer than the command's publish timeout.
The test waits, in a bounded loop, until the topic holds more events than one produce request can carry
(the answer to at least one request has then reached the command), and strikes while the command is
still sending.
"""
from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from readiness.contracts.encoding import REPORT_SUBMISSION, decode, encode
from readiness.contracts.producer import topic_message_count
from readiness.contracts.report_files import read_reports
from readiness.dev.kafka_broker import LocalKafka
from readiness.domain.periods import parse_period
from readiness.domain.reference import units_open_on
from readiness.ops.broker import Node
from readiness.ops.kafka_client import ADMIN, kafka_python_config, province_principal, write_client_properties
from readiness.settings import Settings, settings_env
from support.faults import record_fault
from support.ports import free_port
from support.report_files import CSV_HEADER

pytestmark = pytest.mark.slow

EVENTS = 2_000
PUBLISH_TIMEOUT_S = 15.0
# After the fault: the command's own bound, plus its start and its forced close.
EXIT_BOUND_S = PUBLISH_TIMEOUT_S + 15
QUOTA_BYTES_PER_S = 40_000
SUMMARY = re.compile(r"^error: (\d+) of (\d+) events were acknowledged by Kafka, (\d+) were not: (.+)$")


@pytest.fixture(scope="module")
def broker(own_broker):
    """The module's broker (``tests/faults/conftest.py``): ``.kafka`` (a LocalKafka), ``.settings``, ``.pid()``."""
    return own_broker("publish", publish_timeout_s=PUBLISH_TIMEOUT_S)


def report_file(path: Path, events: int) -> Path:
    """``events`` reports of Thanh Hóa's units (distinct unit, quarter and revision each), no event_id
    column: each id is derived from the report, so the same file always carries the same ids."""
    units = [u for u in units_open_on(date(2026, 12, 14)) if u.province_code == "38"]
    rows = [CSV_HEADER]
    for n in range(events):
        unit, quarter, revision = units[n % len(units)], n // len(units) % 4 + 1, n // (len(units) * 4)
        closes = parse_period(f"2026Q{quarter}").window()[1]
        rows.append(f"38,{unit.code},{unit.kind.upper()},,QUARTERLY,2026Q{quarter},it_staff,,,{n % 7},count,"
                    f"{revision},{closes.isoformat()}T10:00:00+07:00,fault-test,")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def set_produce_quota(settings: Settings, bytes_per_s: int | None) -> None:
    """A produce byte-rate quota on the province's principal (None removes it), with Kafka's own tool."""
    action = (["--delete-config", "producer_byte_rate"] if bytes_per_s is None
              else ["--add-config", f"producer_byte_rate={bytes_per_s}"])
    properties = write_client_properties(settings, ADMIN, settings.var_dir / "admin-client.properties")
    command = Node(settings).java("kafka.admin.ConfigCommand", "--bootstrap-server", settings.kafka_bootstrap,
                                  "--command-config", str(properties), "--alter", *action, "--entity-type", "users",
                                  "--entity-name", province_principal("38"))
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def start_publish(settings: Settings, path: Path, *args: str) -> tuple[subprocess.Popen, Path, Path]:
    out, err = path.with_suffix(".out"), path.with_suffix(".err")
    env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
    with open(out, "w") as out_file, open(err, "w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "readiness.cli", "publish", str(path), *args], env=env,
                                stdout=out_file, stderr=err_file)
    return proc, out, err


def events_per_request(path: Path) -> int:
    """At most this many of the file's events fit in one produce request: they all share one key (one
    partition), and a request carries one batch per partition of at most the producer's ``batch_size``."""
    smallest = min(len(encode(r, REPORT_SUBMISSION)) for r in read_reports(path))
    return int(KafkaProducer.DEFAULT_CONFIG["batch_size"]) // smallest


def wait_for_acknowledged_events(settings: Settings, proc: subprocess.Popen, err_path: Path, already: int,
                                 per_request: int, timeout: float = 60.0) -> int:
    """Poll the topic until it holds more than ``per_request`` events beyond ``already`` while the command
    still runs; the count. The producer keeps one request in flight and sends the next only once the first
    is answered, so the answer to at least one request has then reached the command."""
    deadline = time.monotonic() + timeout
    seen = already
    while time.monotonic() < deadline:
        assert proc.poll() is None, (f"the command ended (exit {proc.returncode}) before the fault, with "
                                     f"{seen - already} of its events on the topic: {err_path.read_text()[:300]}")
        seen = topic_message_count(settings)
        if seen > already + per_request:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{seen - already} events reached the topic within {timeout:.0f}s, "
                         f"not more than one request's {per_request}")


def wait_dead(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z":
        assert time.monotonic() < deadline, f"pid {pid} outlived SIGKILL by {timeout:.0f}s"
        time.sleep(0.1)


def topic_event_ids(settings: Settings) -> list[str]:
    """The event id of every message on the reports topic, read from each partition's start to its end."""
    consumer = KafkaConsumer(**kafka_python_config(settings, ADMIN), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(settings.topic_reports, p)
                      for p in sorted(consumer.partitions_for_topic(settings.topic_reports) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        ids: list[str] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, "the topic could not be read to its end within 60s"
            for batch in consumer.poll(timeout_ms=1000).values():
                ids += [str(decode(m.value)[0]["event_id"]) for m in batch]
        return ids
    finally:
        consumer.close()


def assert_failure_report(err: str, failed_out: Path, file_ids: set[str]) -> tuple[int, int]:
    """The command's account of a failed publish: (acknowledged, not acknowledged)."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    match = SUMMARY.match(lines[0])
    assert match, lines[0]
    acknowledged, total, missing = (int(match[i]) for i in (1, 2, 3))
    assert total == EVENTS and acknowledged + missing == EVENTS
    assert lines[1:] == [f"the {missing} event ids not acknowledged are in {failed_out}; send them again with: "
                         f"readiness publish {failed_out.parent / 'reports.csv'} --only-ids {failed_out}",
                         "resending is safe: each report keeps its event id and the platform drops the copies it "
                         "already has"]
    listed = failed_out.read_text().split()
    assert len(listed) == len(set(listed)) == missing and set(listed) <= file_ids
    return acknowledged, missing


def strike(kafka: LocalKafka, how: str) -> None:
    pid = kafka.pid()
    assert pid is not None, "the test's broker is not running"
    if how == "killed":
        os.kill(pid, signal.SIGKILL)
        wait_dead(pid)
    else:
        os.kill(pid, signal.SIGSTOP)


def recover(kafka: LocalKafka, how: str, pid: int) -> None:
    if how == "killed":
        kafka.start()
    else:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("how", ["killed", "frozen"])
def test_broker_failing_mid_send_then_resend_of_the_failed_ids(broker, tmp_path, how):
    settings = broker.settings
    path = report_file(tmp_path / "reports.csv", EVENTS)
    file_ids = {r["event_id"] for r in read_reports(path)}
    assert len(file_ids) == EVENTS
    before = topic_event_ids(settings)
    failed_out = tmp_path / "failed.txt"
    set_produce_quota(settings, QUOTA_BYTES_PER_S)
    pid = broker.pid()
    proc, _, err_path = start_publish(settings, path, "--failed-out", str(failed_out))
    try:
        # Some events are acknowledged when the broker goes; the throttled rest are not.
        wait_for_acknowledged_events(settings, proc, err_path, len(before), events_per_request(path))
        strike(broker.kafka, how)
        struck = time.monotonic()
        code = proc.wait(timeout=EXIT_BOUND_S + 30)
        took = time.monotonic() - struck
    finally:
        if proc.poll() is None:  # the test failed before the command ended: ours, by its pid
            proc.kill()
            proc.wait()
        recover(broker.kafka, how, pid)
    assert code == 1, err_path.read_text()
    assert took < EXIT_BOUND_S, f"the command took {took:.1f}s after the broker was {how}"
    acknowledged, missing = assert_failure_report(err_path.read_text(), failed_out, file_ids)
    # Mid-send: some events were acknowledged before the fault, some were not.
    assert 0 < acknowledged and missing > 0, err_path.read_text()

    set_produce_quota(settings, None)
    proc, out_path, err_path = start_publish(settings, path, "--only-ids", str(failed_out), "--failed-out",
                                             str(failed_out))
    assert proc.wait(timeout=120) == 0, err_path.read_text()
    assert out_path.read_text() == f"published {missing} events, all acknowledged\n"
    assert err_path.read_text() == "" and failed_out.read_text() == ""

    on_topic = topic_event_ids(settings)[len(before):]
    assert set(on_topic) == file_ids  # every event of the file at least once, and nothing else
    assert len(on_topic) >= EVENTS
    record_fault(fault=f"broker {how} mid-publish (SIGKILL, or SIGSTOP), failed ids resent",
                 injected="signal to the broker's pid after the first events", runs=2, events_in=EVENTS,
                 acknowledged_before_fault=acknowledged, lost=len(file_ids - set(on_topic)),
                 copies_on_topic=len(on_topic) - EVENTS, exit_seconds_after_fault=round(took, 1))


def test_no_broker_at_all_exits_1_at_once_with_every_id_to_send_again(broker, tmp_path):
    path = report_file(tmp_path / "reports.csv", EVENTS)
    failed_out = tmp_path / "failed.txt"
    nobody = dataclasses.replace(broker.settings, kafka_bootstrap=f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    proc, out_path, err_path = start_publish(nobody, path, "--failed-out", str(failed_out))
    code = proc.wait(timeout=EXIT_BOUND_S + 30)
    took = time.monotonic() - started
    err = err_path.read_text()

    assert (code, out_path.read_text()) == (1, ""), err
    assert took < 15, f"{took:.1f}s without a broker"
    assert err.splitlines()[0] == (f"error: 0 of {EVENTS} events were acknowledged by Kafka, {EVENTS} were not: "
                                   f"cannot connect to {nobody.kafka_bootstrap} (NoBrokersAvailable)")
    assert assert_failure_report(err, failed_out, {r["event_id"] for r in read_reports(path)}) == (0, EVENTS)



def test_a_broker_frozen_before_the_publish_exits_1_within_the_bound(broker, tmp_path):
    """A broker that accepts connections but never answers (SIGSTOP): the command still ends."""
    path = report_file(tmp_path / "reports.csv", EVENTS)
    failed_out = tmp_path / "failed.txt"
    pid = broker.pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        proc, out_path, err_path = start_publish(broker.settings, path, "--failed-out", str(failed_out))
        code = proc.wait(timeout=EXIT_BOUND_S + 30)
        took = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert (code, out_path.read_text()) == (1, ""), err_path.read_text()
    assert took < EXIT_BOUND_S, f"{took:.1f}s with a frozen broker"
    assert assert_failure_report(err_path.read_text(), failed_out, {r["event_id"] for r in read_reports(path)}) == (
        0, EVENTS)
