"""`readiness publish FILE` as a province runs it: good files against the session's real Kafka broker,
and the hostile-file corpus (``support.hostile_files``) through the command.

Most runs call the command in this process (``readiness.cli.main``; an exception that escapes fails
the test), a few run it as a real process (``python -m readiness.cli`` and the ``readiness`` console
script) with the settings handed over as ``READINESS_*`` variables. Runs that send use topics of
their own (``isolated``), so counting the topic counts that test's events; they are ``slow``. Runs
that must not send point at a free loopback port (nobody listens on it): a command that tried to send would
exit 1 there, not 2.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from readiness import cli
from readiness.contracts.encoding import decode, to_plain
from readiness.contracts.producer import ReportProducer, topic_message_count
from readiness.contracts.report_checks import NonFiniteNumberError
from readiness.contracts.report_files import read_reports
from readiness.ops.kafka_client import PIPELINE, kafka_python_config
from readiness.settings import Settings, env_name, settings_env
from support.hostile_files import CASES, HostileFile, by_outcome, case
from support.ports import free_port
from support.report_files import CSV_HEADER, GOOD_CSV_ROWS, json_report, write_csv, write_json

# Name-based ids of the reports below (see tests/unit/contracts/test_report_files.py).
ID_38_S02_2026Q3_REV0 = "4f0c321b-3c70-562c-ad14-0a7d6f8b2a65"
ID_38_S03_2026Q3_REV0 = "b392d401-c316-52d7-9c53-5bc9bf4f3244"

THANH_HOA_S03 = ("38,38.S03,AGENCY,Sở Tài chính Thanh Hóa,QUARTERLY,2026Q3,it_staff,,,3,count,0,"
                 "2026-09-19T10:00:00Z,thanhhoa-dic,")
SAFE_RESEND = "resending is safe: each report keeps its event id and the platform drops the copies it already has"
CONSOLE_SCRIPT = Path(sys.executable).parent / "readiness"


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float = 0.0


def publish(settings: Settings | None, path: Path, *args: str, command: tuple[str, ...] | None = None) -> Run:
    """``readiness publish path args`` as a process, with ``settings`` (None: no broker) in its environment."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.update(settings_env(settings) if settings else {env_name("kafka_bootstrap"): f"127.0.0.1:{free_port()}"})
    started = time.monotonic()
    result = subprocess.run([*(command or (sys.executable, "-m", "readiness.cli")), "publish", str(path), *args],
                            env=env, capture_output=True, text=True, timeout=180)
    return Run(result.returncode, result.stdout, result.stderr, time.monotonic() - started)


@pytest.fixture
def in_process(capsys, monkeypatch):
    """``run(settings, path, *args)``: ``readiness publish`` in this process (settings None: no broker)."""

    def run(settings: Settings | None, path: Path, *args: str) -> Run:
        env = settings_env(settings) if settings else {env_name("kafka_bootstrap"): f"127.0.0.1:{free_port()}"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        started = time.monotonic()
        code = cli.main(["publish", str(path), *args])
        out, err = capsys.readouterr()
        return Run(code, out, err, time.monotonic() - started)

    return run


def read_topic(settings: Settings, expected: int, timeout: float = 30.0) -> list:
    """Every message on the settings' reports topic, read from the beginning of each partition."""
    consumer = KafkaConsumer(**kafka_python_config(settings, PIPELINE), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(settings.topic_reports, p)
                      for p in sorted(consumer.partitions_for_topic(settings.topic_reports) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        messages: list = []
        deadline = time.monotonic() + timeout
        while len(messages) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():
                messages.extend(batch)
        return messages
    finally:
        consumer.close()


def assert_outcome(hostile: HostileFile, run: Run, strict: bool = False) -> None:
    """The outcome the case says, and never a traceback."""
    assert "Traceback" not in run.err + run.out, run.err
    lines = run.err.splitlines()
    if hostile.outcome == "refused":
        assert (run.code, run.out) == (2, ""), run.err
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        assert [m for m in hostile.error_mentions() if m not in lines[0]] == [], lines[0]
        return
    warned, rest = lines[:len(hostile.warnings)], lines[len(hostile.warnings):]
    for line, text in zip(warned, hostile.warnings, strict=True):
        assert line.startswith(f"warning: {hostile.filename}") and text in line, line
        assert "the quality gate will quarantine" in line
    if strict and hostile.warnings:
        assert (run.code, run.out) == (2, ""), run.err
        assert len(rest) == 1 and rest[0].startswith("error: ") and "--strict: nothing was sent" in rest[0], rest
    else:
        assert (run.code, rest) == (0, []), run.err
        assert run.out == f"published {hostile.reports} events, all acknowledged\n"


# ------------------------------------------------------------------------------------------------
# The hostile corpus


def test_the_corpus_holds_at_least_sixty_files_and_every_outcome():
    assert len(CASES) >= 60
    assert {c.outcome for c in CASES} == {"refused", "warned", "sent"}


@pytest.mark.parametrize("hostile", by_outcome("refused"), ids=lambda c: c.name)
def test_a_malformed_file_is_one_error_line_and_exit_2(in_process, tmp_path, hostile):
    assert_outcome(hostile, in_process(None, hostile.write(tmp_path)))


@pytest.mark.parametrize("hostile", by_outcome("warned"), ids=lambda c: c.name)
def test_strict_refuses_a_file_with_warnings_before_connecting(in_process, tmp_path, hostile):
    assert_outcome(hostile, in_process(None, hostile.write(tmp_path), "--strict"), strict=True)


@pytest.mark.parametrize("name", ["binary-random", "utf16-without-bom", "json-deeply-nested", "directory",
                                  "name-of-131072-characters"])
def test_a_malformed_file_as_a_real_process(tmp_path, name):
    hostile = case(name)
    assert_outcome(hostile, publish(None, hostile.write(tmp_path)))


def test_a_malformed_file_through_the_console_script(tmp_path):
    hostile = case("cp1258-csv")
    assert_outcome(hostile, publish(None, hostile.write(tmp_path), command=(str(CONSOLE_SCRIPT),)))


@pytest.fixture(scope="module")
def hostile_topic(isolated) -> Settings:
    return isolated("publish_hostile")


@pytest.mark.slow
@pytest.mark.parametrize("hostile", by_outcome("warned", "sent"), ids=lambda c: c.name)
def test_a_file_that_is_read_is_sent_after_its_warnings(in_process, hostile_topic, tmp_path, hostile):
    before = topic_message_count(hostile_topic)
    assert_outcome(hostile, in_process(hostile_topic, hostile.write(tmp_path)))
    assert topic_message_count(hostile_topic) - before == hostile.reports


@pytest.mark.slow
def test_a_utf16_file_from_excel_as_a_real_process(hostile_topic, tmp_path):
    hostile = case("utf16-excel-unicode-text")
    before = topic_message_count(hostile_topic)
    assert_outcome(hostile, publish(hostile_topic, hostile.write(tmp_path)))
    assert topic_message_count(hostile_topic) - before == hostile.reports


# ------------------------------------------------------------------------------------------------
# Good files


@pytest.mark.slow
def test_a_good_csv_is_published_one_event_per_report(isolated, tmp_path):
    settings = isolated("publish_csv")
    # Three rows, two reports: 38.S02 on lines 2 and 4, 38.S03 on line 3.
    path = write_csv(tmp_path / "thanhhoa_2026Q3.csv", GOOD_CSV_ROWS[0], THANH_HOA_S03, GOOD_CSV_ROWS[1])

    result = publish(settings, path)

    assert (result.code, result.out) == (0, "published 2 events, all acknowledged\n"), result.err
    assert "Traceback" not in result.err
    assert topic_message_count(settings) == 2
    messages = read_topic(settings, expected=2)
    events = sorted(((m.key, to_plain(decode(m.value)[0])) for m in messages),
                    key=lambda key_event: key_event[1]["reporting_unit"]["code"])
    assert [(key, e["event_id"], e["reporting_unit"]["code"], e["report_type"], e["period"], e["revision"],
             [(v["indicator_code"], v["numerator"], v["denominator"], v["value"]) for v in e["values"]])
            for key, e in events] == [
        (b"38", ID_38_S02_2026Q3_REV0, "38.S02", "QUARTERLY", "2026Q3", 0,
         [("computers_per_100_staff", 88.0, 100.0, None), ("it_staff", None, None, 4.0)]),
        (b"38", ID_38_S03_2026Q3_REV0, "38.S03", "QUARTERLY", "2026Q3", 0, [("it_staff", None, None, 3.0)]),
    ]


@pytest.mark.slow
def test_a_good_json_list_is_published(isolated, tmp_path):
    settings = isolated("publish_json")
    path = write_json(tmp_path / "phutho.json", [json_report(), json_report(period="2026", report_type="YEARLY",
                                                                            event_id="", revision=0)])
    result = publish(settings, path)

    assert (result.code, result.out) == (0, "published 2 events, all acknowledged\n"), result.err
    assert "Traceback" not in result.err
    assert topic_message_count(settings) == 2
    events = sorted(to_plain(decode(m.value)[0])["period"] for m in read_topic(settings, expected=2))
    assert events == ["2026", "2026S1"]


@pytest.mark.slow
@pytest.mark.parametrize("name, content, message", [
    # The first report is good: nothing is sent until every report of the file is valid.
    ("bad_number.csv", "\n".join([GOOD_CSV_ROWS[0], THANH_HOA_S03, GOOD_CSV_ROWS[1].replace(",,,4,", ",abc,,4,")]),
     "bad_number.csv line 4: field 'numerator': 'abc' is not a number"),
    ("bad_period.csv", "\n".join([GOOD_CSV_ROWS[0], THANH_HOA_S03.replace("2026Q3", "2026Q7")]),
     "bad_period.csv line 3: field 'period': period id '2026Q7': Q7 is out of range 1-4"),
    ("latin1.csv", "\n".join([GOOD_CSV_ROWS[0], THANH_HOA_S03]).encode("utf-8").replace(b"\xc3\xb3", b"\xf3"),
     "latin1.csv line 2: not UTF-8 (byte 0xf3; cp1258? save the file as UTF-8)"),
], ids=["csv-bad-number", "csv-bad-period", "csv-not-utf-8"])
def test_a_malformed_file_is_refused_in_one_line_and_nothing_is_sent(isolated, tmp_path, name, content, message):
    settings = isolated(f"publish_{Path(name).stem}")
    path = tmp_path / name
    if isinstance(content, str):
        write_csv(path, content)
    else:
        path.write_bytes(f"{CSV_HEADER}\n".encode("utf-8") + content)

    result = publish(settings, path)

    assert result.code == 2
    assert "Traceback" not in result.err
    assert result.err == f"error: {message}\n"
    assert result.out == ""
    assert topic_message_count(settings) == 0


# ------------------------------------------------------------------------------------------------
# Kafka does not acknowledge: counts, the ids to send again, exit 1 in bounded time


@pytest.fixture
def no_broker(kafka_broker) -> Settings:
    """The deployment's credentials and keys (provisioned by the session broker), and a broker address
    nobody listens on."""
    return dataclasses.replace(kafka_broker, kafka_bootstrap=f"127.0.0.1:{free_port()}")


@pytest.mark.slow
def test_no_broker_exits_1_listing_every_event_to_send_again(in_process, no_broker, tmp_path):
    path = write_csv(tmp_path / "thanhhoa_2026Q3.csv", *GOOD_CSV_ROWS, THANH_HOA_S03)

    result = in_process(no_broker, path)

    assert result.code == 1 and result.out == "" and "Traceback" not in result.err
    first, header, *ids, last = result.err.splitlines()
    assert first.startswith("error: 0 of 2 events were acknowledged by Kafka, 2 were not: cannot connect to "
                            "127.0.0.1:") and first.endswith("(NoBrokersAvailable)")
    assert header.startswith("event ids not acknowledged")
    assert [i.strip() for i in ids] == [ID_38_S02_2026Q3_REV0, ID_38_S03_2026Q3_REV0]
    assert last == SAFE_RESEND
    assert result.seconds < 15


@pytest.mark.slow
def test_no_broker_as_a_real_process_writes_the_ids_to_failed_out(no_broker, tmp_path):
    path = write_csv(tmp_path / "thanhhoa_2026Q3.csv", *GOOD_CSV_ROWS, THANH_HOA_S03)
    failed = tmp_path / "failed.txt"
    nobody = no_broker

    result = publish(nobody, path, "--failed-out", str(failed))

    assert (result.code, result.out) == (1, "")
    assert result.err.splitlines() == [
        f"error: 0 of 2 events were acknowledged by Kafka, 2 were not: cannot connect to {nobody.kafka_bootstrap} "
        "(NoBrokersAvailable)",
        f"the 2 event ids not acknowledged are in {failed}; send them again with: readiness publish {path} "
        f"--only-ids {failed}",
        SAFE_RESEND]
    assert failed.read_text().split() == [r["event_id"] for r in read_reports(path)]
    assert result.seconds < 20


@pytest.mark.slow
def test_events_not_acknowledged_exit_1_with_the_count(kafka_broker, tmp_path):
    # A topic that does not exist (the broker does not create topics on demand, and no ACL lets a
    # province see it): the broker refuses the metadata at once and the send fails; the command
    # must say so.
    missing = dataclasses.replace(kafka_broker, topic_reports="test.publish_unacknowledged.never-created")
    path = write_csv(tmp_path / "thanhhoa_2026Q3.csv", *GOOD_CSV_ROWS)

    result = publish(missing, path)

    assert result.code == 1
    assert "Traceback" not in result.err
    assert result.err.splitlines() == [
        "error: 0 of 1 events were acknowledged by Kafka, 1 were not: [Error 29] TopicAuthorizationFailedError: "
        "test.publish_unacknowledged.never-created",
        f"event ids not acknowledged (readiness publish {path} --failed-out FILE writes them to a file for "
        "--only-ids):",
        f"  {ID_38_S02_2026Q3_REV0}",
        SAFE_RESEND]
    assert result.out == ""
    assert topic_message_count(missing) == 0


@pytest.mark.slow
def test_only_ids_sends_just_the_listed_reports_and_failed_out_is_emptied(isolated, tmp_path):
    settings = isolated("publish_only_ids")
    path = write_csv(tmp_path / "thanhhoa_2026Q3.csv", *GOOD_CSV_ROWS, THANH_HOA_S03)
    listed = tmp_path / "failed.txt"
    listed.write_text(f"{ID_38_S03_2026Q3_REV0}\n", encoding="utf-8")

    result = publish(settings, path, "--only-ids", str(listed), "--failed-out", str(listed))

    assert (result.code, result.out, result.err) == (0, "published 1 events, all acknowledged\n", "")
    assert [to_plain(decode(m.value)[0])["event_id"] for m in read_topic(settings, expected=1)] == [
        ID_38_S03_2026Q3_REV0]
    assert listed.read_text() == ""  # the last run left nothing to send again
    again = publish(settings, path, "--only-ids", str(listed))
    assert (again.code, again.out) == (0, f"nothing to send: {listed} lists no event ids\n")


def test_failed_out_may_not_be_the_report_file(in_process, tmp_path):
    path = write_csv(tmp_path / "r.csv", *GOOD_CSV_ROWS)
    result = in_process(None, path, "--failed-out", str(path))
    assert (result.code, result.err) == (2, f"error: {path}: --failed-out would overwrite the report file\n")
    assert read_reports(path)  # untouched


@pytest.mark.slow
def test_the_producer_refuses_a_non_finite_number_and_sends_nothing(isolated, tmp_path):
    settings = isolated("publish_non_finite")
    (good,) = read_reports(write_json(tmp_path / "r.json", json_report()))
    bad = {**good, "event_id": "0b6f4a9e-2f61-4d39-9c55-2a0f8f2f6c12",
           "values": [{**good["values"][0], "denominator": float("inf")}]}
    with ReportProducer(settings) as producer, pytest.raises(NonFiniteNumberError, match=r"values\[0\]\.denominator"):
        producer.publish_reports([good, bad])
    assert topic_message_count(settings) == 0


def test_a_setting_of_the_wrong_type_is_one_line(in_process, monkeypatch, tmp_path):
    monkeypatch.setenv(env_name("publish_timeout_s"), "thirty")
    result = in_process(None, write_csv(tmp_path / "r.csv", *GOOD_CSV_ROWS))
    assert (result.code, result.out) == (2, "")
    assert result.err == "error: the settings (READINESS_* variables): could not convert string to float: 'thirty'\n"


@pytest.mark.slow
def test_a_missing_ca_certificate_is_one_line_and_nothing_is_sent(in_process, no_broker, tmp_path):
    settings = dataclasses.replace(no_broker, kafka_ca_file=str(tmp_path / "absent-ca.pem"))
    path = write_csv(tmp_path / "r.csv", *GOOD_CSV_ROWS)
    result = in_process(settings, path)
    assert (result.code, result.out) == (2, "")
    assert result.err == (f"error: {path}: nothing was sent: No such file or directory (is the CA certificate "
                          f"{tmp_path / 'absent-ca.pem'} readable?)\n")
