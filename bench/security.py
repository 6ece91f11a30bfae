"""What signing and SASL_SSL cost: events/s with and without, measured in the same run.

- **Signing**: encoding alone against encoding plus the Ed25519 signature the producer adds, and
  the ingest's check of a signature (``check_signature``) against decoding alone.
- **Transport**: the same ``send_raw`` of the same encoded events (unsigned, so only the connection
  differs) to the project's SASL_SSL broker and to a PLAINTEXT broker that this benchmark starts
  for the comparison only; then the signed publish over SASL_SSL, as a province sends.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from bench.common import free_port, local_broker, median, with_topic
from bench.encoding import sample_reports
from readiness.contracts.encoding import decode, encode
from readiness.contracts.producer import ReportProducer
from readiness.contracts.signing import KeyRegistry, check_signature, header_map, signer_for
from readiness.ops.topics import ensure_topics
from readiness.settings import Settings


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def signing(settings: Settings, n_events: int, repeats: int) -> dict:
    """Median events/s of encode, encode + sign, decode, verify + decode (one province's key)."""
    reports = [dict(r, province_code="38") for r in sample_reports(n_events)]
    signer = signer_for("38", settings.private_keys_dir)
    snapshot = KeyRegistry(settings.key_registry).snapshot()
    rates: dict[str, list[float]] = {"encode": [], "encode_sign": [], "decode": [], "verify_decode": []}
    for _ in range(repeats):
        started = time.perf_counter()
        values = [encode(r) for r in reports]
        rates["encode"].append(_rate(n_events, time.perf_counter() - started))
        started = time.perf_counter()
        signed = [(v, signer.headers("38", v)) for v in (encode(r) for r in reports)]
        rates["encode_sign"].append(_rate(n_events, time.perf_counter() - started))
        started = time.perf_counter()
        for v in values:
            decode(v)
        rates["decode"].append(_rate(n_events, time.perf_counter() - started))
        started = time.perf_counter()
        for v, headers in signed:
            reason, _, _ = check_signature(snapshot, header_map(headers), v)
            if reason is not None:
                raise RuntimeError(f"a signature the benchmark made did not verify: {reason}")
            decode(v)
        rates["verify_decode"].append(_rate(n_events, time.perf_counter() - started))
    med = {k: median(v) for k, v in rates.items()}
    return {"events": n_events, "repeats": repeats, "rates": rates, "median": med,
            "ratio_sign": med["encode_sign"] / med["encode"], "ratio_verify": med["verify_decode"] / med["decode"]}


def _send(settings: Settings, items: list[tuple[str, bytes]], sign: bool) -> float:
    with ReportProducer(settings, sign=sign) as producer:
        producer.send_raw(settings.topic_reports, items[:100])  # connections and metadata first
        started = time.perf_counter()
        result = producer.send_raw(settings.topic_reports, items)
        elapsed = time.perf_counter() - started
    if result.not_acknowledged:
        raise RuntimeError(f"{result.not_acknowledged} events not acknowledged: {result.failures[:3]}")
    return _rate(len(items), elapsed)


def transport(settings: Settings, work_dir: Path, n_events: int, repeats: int) -> dict:
    """Median events/s of ``send_raw`` over SASL_SSL (``settings``' broker) and over PLAINTEXT."""
    secured = with_topic(settings, "security-sasl")
    ensure_topics(secured)
    plain = dataclasses.replace(with_topic(settings, "security-plain"), kafka_security_protocol="PLAINTEXT",
                                var_dir=work_dir / "plaintext-baseline", kafka_bootstrap=f"127.0.0.1:{free_port()}",
                                kafka_controller_port=free_port())
    items = [("38", encode(dict(r, province_code="38"))) for r in sample_reports(n_events)]
    rates: dict[str, list[float]] = {"plaintext": [], "sasl_ssl": [], "sasl_ssl_signed": []}
    with local_broker(plain, plaintext_baseline=True):
        ensure_topics(plain)
        for _ in range(repeats):
            rates["plaintext"].append(_send(plain, items, sign=False))
            rates["sasl_ssl"].append(_send(secured, items, sign=False))
            rates["sasl_ssl_signed"].append(_send(secured, items, sign=True))
    med = {k: median(v) for k, v in rates.items()}
    return {"events": n_events, "repeats": repeats, "rates": rates, "median": med,
            "ratio_sasl_ssl": med["sasl_ssl"] / med["plaintext"],
            "ratio_signed": med["sasl_ssl_signed"] / med["plaintext"]}


def run(settings: Settings, work_dir: Path, n_events: int, repeats: int) -> dict:
    return {"signing": signing(settings, n_events, repeats), "transport": transport(settings, work_dir, n_events,
                                                                                      repeats)}
