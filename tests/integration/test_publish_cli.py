"""`readiness publish FILE` as a province runs it, against the session's real Kafka broker.

The command runs in a subprocess with the settings handed over as ``READINESS_*`` variables; each
test publishes to topics of its own (``isolated``), so counting the topic counts that test's events.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from readiness.contracts.encoding import decode, to_plain
from readiness.contracts.producer import topic_message_count
from readiness.ops.kafka_client import PIPELINE, kafka_python_config
from readiness.settings import Settings, settings_env
from support.report_files import CSV_HEADER, GOOD_CSV_ROWS, json_report, write_csv, write_json

pytestmark = pytest.mark.slow

# Name-based ids of the reports below (see tests/unit/contracts/test_report_files.py).
ID_38_S02_2026Q3_REV0 = "4f0c321b-3c70-562c-ad14-0a7d6f8b2a65"
ID_38_S03_2026Q3_REV0 = "b392d401-c316-52d7-9c53-5bc9bf4f3244"

THANH_HOA_S03 = ("38,38.S03,AGENCY,Sở Tài chính Thanh Hóa,QUARTERLY,2026Q3,it_staff,,,3,count,0,"
                 "2026-09-19T10:00:00Z,thanhhoa-dic,")


def publish(settings: Settings, path: Path) -> subprocess.CompletedProcess:
    """``readiness publish path`` (the console script's module) with ``settings`` in its environment."""
    env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "readiness.cli", "publish", str(path)], env=env,
                          capture_output=True, text=True, timeout=180)


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


def test_a_good_csv_is_published_one_event_per_report(isolated, tmp_path):
    settings = isolated("publish_csv")
    # Three rows, two reports: 38.S02 on lines 2 and 4, 38.S03 on line 3.
    path = write_csv(tmp_path / "thanhhoa_2026Q3.csv", GOOD_CSV_ROWS[0], THANH_HOA_S03, GOOD_CSV_ROWS[1])

    result = publish(settings, path)

    assert (result.returncode, result.stdout) == (0, "published 2 events, all acknowledged\n"), result.stderr
    assert "Traceback" not in result.stderr
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


def test_a_good_json_list_is_published(isolated, tmp_path):
    settings = isolated("publish_json")
    path = write_json(tmp_path / "phutho.json", [json_report(), json_report(period="2026", report_type="YEARLY",
                                                                            event_id="", revision=0)])
    result = publish(settings, path)

    assert (result.returncode, result.stdout) == (0, "published 2 events, all acknowledged\n"), result.stderr
    assert "Traceback" not in result.stderr
    assert topic_message_count(settings) == 2
    events = sorted(to_plain(decode(m.value)[0])["period"] for m in read_topic(settings, expected=2))
    assert events == ["2026", "2026S1"]


@pytest.mark.parametrize("name, content, message", [
    # The first report is good: nothing is sent until every report of the file is valid.
    ("bad_number.csv", "\n".join([GOOD_CSV_ROWS[0], THANH_HOA_S03, GOOD_CSV_ROWS[1].replace(",,,4,", ",abc,,4,")]),
     "bad_number.csv line 4: field 'numerator': 'abc' is not a number"),
    ("bad_period.csv", "\n".join([GOOD_CSV_ROWS[0], THANH_HOA_S03.replace("2026Q3", "2026Q7")]),
     "bad_period.csv line 3: field 'period': period id '2026Q7': Q7 is out of range 1-4"),
    ("latin1.csv", "\n".join([GOOD_CSV_ROWS[0], THANH_HOA_S03]).encode("utf-8").replace(b"\xc3\xb3", b"\xf3"),
     "latin1.csv line 2: not UTF-8 text (byte 0xf3); save the file as UTF-8"),
], ids=["csv-bad-number", "csv-bad-period", "csv-not-utf-8"])
def test_a_malformed_file_is_refused_in_one_line_and_nothing_is_sent(isolated, tmp_path, name, content, message):
    settings = isolated(f"publish_{Path(name).stem}")
    path = tmp_path / name
    if isinstance(content, str):
        write_csv(path, content)
    else:
        path.write_bytes(f"{CSV_HEADER}\n".encode("utf-8") + content)

    result = publish(settings, path)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr == f"error: {message}\n"
    assert result.stdout == ""
    assert topic_message_count(settings) == 0


def test_no_broker_exits_1_saying_how_many_were_not_acknowledged(kafka_settings, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nobody = dataclasses.replace(kafka_settings, kafka_bootstrap=f"127.0.0.1:{port}")
    path = write_csv(tmp_path / "thanhhoa_2026Q3.csv", *GOOD_CSV_ROWS, THANH_HOA_S03)

    result = publish(nobody, path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr == (f"error: 0 of 2 events were acknowledged by Kafka: cannot connect to "
                             f"{nobody.kafka_bootstrap} (NoBrokersAvailable)\n")
    assert result.stdout == ""


def test_events_not_acknowledged_exit_1_with_the_count(kafka_broker, tmp_path):
    # A topic that does not exist (the broker does not create topics on demand, and no ACL lets a
    # province see it): the broker refuses the metadata at once and the send fails; the command
    # must say so.
    missing = dataclasses.replace(kafka_broker, topic_reports="test.publish_unacknowledged.never-created")
    path = write_csv(tmp_path / "thanhhoa_2026Q3.csv", *GOOD_CSV_ROWS)

    result = publish(missing, path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    first, *reasons = result.stderr.splitlines()
    assert first == "error: 1 of 1 events were not acknowledged by Kafka"
    assert reasons == ["  TopicAuthorizationFailedError('test.publish_unacknowledged.never-created')"]
    assert result.stdout == ""
    assert topic_message_count(missing) == 0
