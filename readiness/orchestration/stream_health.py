"""The streaming service's health: one JSON document, rewritten atomically, that the service keeps up to
date and that ``readiness status`` and the watchdog DAG read.

``<var_dir>/stream/health.json``::

    {"pid": 4242, "host": "node-1", "state": "starting" | "running" | "stopping" | "stopped" | "failed",
     "started_at": ..., "heartbeat_at": ..., "trigger_s": 3.0, "query_id": "...",
     "in_batch": null | {"batch_id": 7, "phase": "bronze" | "refresh 2026Q3" | "record", "since": ...},
     "last_batch": {"batch_id": 7, "started_at": ..., "ended_at": ..., "events_in": 12, "bronze_rows": 11,
                    "target_plans": 0, "dead_letters": 1, "already_in_bronze": 0, "periods": ["2026Q3"],
                    "failed_periods": {}},
     "lag": {"<topic>:<partition>": offsets not yet read},
     "last_gold_commit": {"period_id": "2026Q3", "at": ..., "versions": {"gold_indicator_values": 12}},
     "error": null | "the query's error, one line"}

Times are ISO 8601 UTC. The heartbeat moves every few seconds while the service runs, batch or no
batch, so a stale heartbeat with a ``running`` state means the process is gone or hung. Standard
library only: the DAG processor imports this module when it parses the watchdog DAG.
"""
from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from readiness.settings import Settings

HEALTH_FILE = "health.json"
LIVE_STATES = ("starting", "running", "stopping")


def health_path(settings: Settings) -> Path:
    return Path(settings.stream_dir) / HEALTH_FILE


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def write_health(path: Path, document: Mapping[str, Any]) -> None:
    """Replace the health file in one rename, so a reader never sees half a document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(document, sort_keys=True, default=str), encoding="utf-8")
    partial.replace(path)


def read_health(path: Path) -> dict[str, Any] | None:
    """The last document the service wrote, or None if it never ran (or the file is not JSON)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def partition_lag(progress: Mapping[str, Any] | None) -> dict[str, int]:
    """``"topic:partition" -> latest offset - end offset of the last batch`` from a streaming query's
    progress (its Kafka source's ``latestOffset`` and ``endOffset``); empty before the first progress."""
    lag: dict[str, int] = {}
    for source in (progress or {}).get("sources") or []:
        latest, end = (_offsets(source.get(key)) for key in ("latestOffset", "endOffset"))
        for topic, partitions in latest.items():
            for partition, offset in partitions.items():
                done = end.get(topic, {}).get(partition, offset)
                lag[f"{topic}:{partition}"] = max(0, int(offset) - int(done))
    return dict(sorted(lag.items()))


def _offsets(value: Any) -> dict[str, dict[str, int]]:
    """A Kafka source offset, given as the JSON text or the object: ``{topic: {partition: offset}}``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    if not isinstance(value, dict):
        return {}
    return {str(t): {str(p): int(o) for p, o in parts.items()} for t, parts in value.items() if isinstance(parts, dict)}


def process_alive(pid: int | None, host: str | None = None) -> bool | None:
    """Whether ``pid`` is a live process running ``readiness ... stream`` (not a recycled pid); None
    when the service wrote its health on another ``host`` (a container, a node): only its heartbeat
    tells then."""
    if host and host != socket.gethostname():
        return None
    if not pid:
        return False
    try:
        words = Path(f"/proc/{int(pid)}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError, ValueError):
        return False
    return state != "Z" and b"stream" in words and any(b"readiness" in w for w in words)


@dataclass(frozen=True)
class Verdict:
    """``never`` (no health file), ``stopped`` (stopped cleanly), ``running``, ``behind`` (running, lag
    over the bound), ``down`` (should run but does not: gone, hung or failed)."""
    status: str
    reason: str

    @property
    def alarming(self) -> bool:
        return self.status in ("down", "behind")


def document_alive(document: Mapping[str, Any] | None) -> bool | None:
    """:func:`process_alive` for the process a health document names."""
    return process_alive((document or {}).get("pid"), (document or {}).get("host"))


def is_live(document: Mapping[str, Any] | None, now: datetime, max_silence_s: float) -> bool:
    """Whether a service is running now by its health document: a live state, and its process alive
    (or, on another host, a heartbeat younger than ``max_silence_s``)."""
    if document is None or document.get("state") not in LIVE_STATES:
        return False
    alive = document_alive(document)
    if alive is not None:
        return alive
    heartbeat = _parse(document.get("heartbeat_at"))
    return heartbeat is not None and (now - heartbeat).total_seconds() <= max_silence_s


def verdict(document: Mapping[str, Any] | None, now: datetime, alive: bool | None, max_silence_s: float,
            max_lag: int) -> Verdict:
    """What the on-call engineer needs to know about the service, from its health document (``alive``:
    :func:`document_alive`; None, another host's process, is judged by its heartbeat)."""
    if document is None:
        return Verdict("never", "the streaming service has not run here")
    state = str(document.get("state"))
    if state == "stopped":
        return Verdict("stopped", f"stopped at {document.get('heartbeat_at')}")
    if state == "failed":
        return Verdict("down", f"failed: {document.get('error') or 'no error recorded'}")
    heartbeat = _parse(document.get("heartbeat_at"))
    silent = (now - heartbeat).total_seconds() if heartbeat else float("inf")
    if alive is False:
        return Verdict("down", f"process {document.get('pid')} is not running (state {state}, "
                               f"last heartbeat {silent:.0f} s ago)")
    if silent > max_silence_s:
        return Verdict("down", f"no heartbeat for {silent:.0f} s (bound {max_silence_s:.0f} s): hung")
    lag = sum(int(v) for v in (document.get("lag") or {}).values())
    if lag > max_lag:
        return Verdict("behind", f"{lag} offsets not yet read (bound {max_lag})")
    return Verdict("running", f"heartbeat {silent:.0f} s ago, {lag} offsets not yet read")


def _parse(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def status_lines(document: Mapping[str, Any] | None, judged: Verdict) -> list[str]:
    """The streaming service's lines in ``readiness status``."""
    if document is None:
        return [f"Streaming service: {judged.status} ({judged.reason})"]
    lines = [f"Streaming service: {judged.status}, pid {document.get('pid')} ({judged.reason}); "
             f"started {document.get('started_at')}, trigger every {document.get('trigger_s')} s"]
    batch = document.get("last_batch")
    if batch:
        failed = batch.get("failed_periods") or {}
        lines.append(f"  last batch {batch.get('batch_id')} ended {batch.get('ended_at')}: "
                     f"{batch.get('events_in', 0)} events in = {batch.get('bronze_rows', 0)} bronze + "
                     f"{batch.get('target_plans', 0)} target plans + {batch.get('dead_letters', 0)} dead letters + "
                     f"{batch.get('already_in_bronze', 0)} already in bronze; periods "
                     f"{', '.join(batch.get('periods') or []) or '-'}"
                     + (f"; gate failed for {', '.join(sorted(failed))}" if failed else ""))
    if document.get("in_batch"):
        running = document["in_batch"]
        lines.append(f"  batch {running.get('batch_id')} running since {running.get('since')}: {running.get('phase')}")
    gold = document.get("last_gold_commit")
    if gold:
        versions = " ".join(f"{t}@{v}" for t, v in sorted((gold.get("versions") or {}).items()))
        lines.append(f"  last gold commit {gold.get('at')} for {gold.get('period_id')}: {versions or 'unchanged'}")
    lag = document.get("lag") or {}
    if lag:
        lines.append("  lag per partition: " + " ".join(f"{k}={v}" for k, v in lag.items()))
    return lines


def check_stream(settings: Settings, now: datetime | None = None) -> Verdict:
    """The watchdog: judge the service and alert (``stream_down`` / ``stream_behind``) when it is down or
    falling behind. Never raises for an alert that cannot be delivered."""
    from readiness.orchestration.alerts import build_alert, post_alert

    document = read_health(health_path(settings))
    judged = verdict(document, now or datetime.now(timezone.utc), document_alive(document),
                     settings.stream_max_silence_s, settings.stream_max_lag)
    if judged.alarming:
        post_alert(build_alert(f"stream_{judged.status}", f"streaming service {judged.status}: {judged.reason}",
                               settings, pid=document.get("pid"), state=document.get("state"),
                               heartbeat_at=document.get("heartbeat_at"), lag=document.get("lag") or {},
                               last_batch=document.get("last_batch")), settings)
    return judged
