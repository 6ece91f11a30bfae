"""Publishing: events per second from the producer library (``ReportProducer.publish_reports``,
production settings: acks=all, idempotence, linger 5 ms, one request in flight) to a local broker,
against Kafka's own ``org.apache.kafka.tools.ProducerPerformance`` sending the same number of
records of the same (mean encoded) size with acks=all and idempotence, to a topic with the same
partition count. ``publish_reports`` validates and Avro-encodes each report before sending; the
``send_raw`` row sends the already-encoded bytes, to separate encoding from the client.

    python -m bench.run --only publish [--quick]
"""
from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from bench.common import ensure_topic, median, with_topic
from bench.encoding import sample_reports
from readiness.contracts.encoding import encode
from readiness.contracts.producer import ReportProducer
from readiness.ops.kafka_client import province_principal, write_client_properties
from readiness.ops.maven import kafka_broker_classpath
from readiness.settings import Settings

SUMMARY = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                     r"([\d.]+) ms max latency")
JAVA_TOOL = "org.apache.kafka.tools.ProducerPerformance"


def java_command(settings: Settings, topic: str, records: int, record_size: int, log4j: Path) -> list[str]:
    """Kafka's producer benchmark, connected as a province (SASL_SSL, from a 0600 client config)."""
    classpath = ":".join(str(p) for p in kafka_broker_classpath(settings))
    config = write_client_properties(settings, province_principal("01"), log4j.parent / "producer-perf.properties")
    return ["java", "-Xmx512m", f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath, JAVA_TOOL,
            "--topic", topic, "--num-records", str(records), "--record-size", str(record_size),
            "--throughput", "-1", "--producer.config", str(config),
            "--producer-props", f"bootstrap.servers={settings.kafka_bootstrap}", "acks=all", "enable.idempotence=true"]


def display_command(topic: str, records: int, record_size: int, bootstrap: str = "<broker>") -> str:
    return ("java -cp \"$(.venv/bin/python -c \"from readiness.ops.maven import kafka_broker_classpath as k; "
            "from readiness.settings import load_settings as s; print(':'.join(map(str, k(s()))))\")\" "
            f"{JAVA_TOOL} --topic {topic} --num-records {records} --record-size {record_size} --throughput -1 "
            f"--producer-props bootstrap.servers={bootstrap} acks=all enable.idempotence=true")


def parse_summary(output: str) -> dict[str, float]:
    """The final summary line of ProducerPerformance (the last line that matches)."""
    matches = SUMMARY.findall(output)
    if not matches:
        raise RuntimeError(f"no ProducerPerformance summary in its output:\n{output[-2000:]}")
    sent, rate, mb, avg, peak = matches[-1]
    return {"records": int(sent), "records_per_s": float(rate), "mb_per_s": float(mb),
            "avg_latency_ms": float(avg), "max_latency_ms": float(peak)}


def _write_log4j(path: Path) -> Path:
    path.write_text("status = warn\nappender.err.type = Console\nappender.err.name = err\n"
                    "appender.err.target = SYSTEM_ERR\nappender.err.layout.type = PatternLayout\n"
                    "appender.err.layout.pattern = %p %m%n\nrootLogger.level = WARN\n"
                    "rootLogger.appenderRef.err.ref = err\n")
    return path


def _python_round(settings: Settings, reports: list[dict]) -> float:
    with ReportProducer(settings) as producer:
        started = time.perf_counter()
        result = producer.publish_reports(reports)
        elapsed = time.perf_counter() - started
    if result.not_acknowledged:
        raise RuntimeError(f"{result.not_acknowledged} events not acknowledged: {result.failures[:3]}")
    return len(reports) / elapsed


def _raw_round(settings: Settings, items: list[tuple[str, bytes]]) -> float:
    with ReportProducer(settings) as producer:
        started = time.perf_counter()
        result = producer.send_raw(settings.topic_reports, items)
        elapsed = time.perf_counter() - started
    if result.not_acknowledged:
        raise RuntimeError(f"{result.not_acknowledged} events not acknowledged: {result.failures[:3]}")
    return len(items) / elapsed


def run(settings: Settings, work_dir: Path, n_events: int = 20_000, repeats: int = 3) -> dict:
    """Median events/s over ``repeats`` rounds; the three producers alternate within each round."""
    python_settings = with_topic(settings, "publish-python")
    java_settings = with_topic(settings, "publish-java")
    ensure_topic(python_settings)
    ensure_topic(java_settings)
    reports = sample_reports(n_events)
    encoded = [(r["province_code"], encode(r)) for r in reports]
    record_size = round(sum(len(v) for _, v in encoded) / len(encoded))
    log4j = _write_log4j(work_dir / "producer-perf-log4j2.properties")
    cmd = java_command(settings, java_settings.topic_reports, len(reports), record_size, log4j)
    rates: dict[str, list[float]] = {"publish_reports": [], "send_raw": [], "java": []}
    java_runs = []
    _raw_round(python_settings, encoded[:200])  # first metadata fetch, topic leader election
    for _ in range(repeats):
        rates["publish_reports"].append(_python_round(python_settings, reports))
        rates["send_raw"].append(_raw_round(python_settings, encoded))
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"ProducerPerformance exited {proc.returncode}:\n{proc.stderr[-2000:]}")
        summary = parse_summary(proc.stdout)
        summary["process_wall_s"] = wall
        java_runs.append(summary)
        rates["java"].append(summary["records_per_s"])
    med = {k: median(v) for k, v in rates.items()}
    return {
        "events": len(reports),
        "record_size": record_size,
        "repeats": repeats,
        "partitions": settings.topic_partitions,
        "rates": rates,
        "median": med,
        "java_runs": java_runs,
        "ratio_publish_reports": med["publish_reports"] / med["java"],
        "ratio_send_raw": med["send_raw"] / med["java"],
        "java_command": display_command(java_settings.topic_reports, len(reports), record_size),
    }
