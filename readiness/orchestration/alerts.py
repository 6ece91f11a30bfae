"""Alerts to a webhook: failed tasks, units still missing after a due date, ingest silence,
provinces held back by the quality gate, the streaming service down or behind.

Every alert is one JSON object POSTed to ``settings.webhook_url`` (``READINESS_WEBHOOK_URL``);
with no URL configured the alert is only logged. A token, when the receiver wants one, is read
from the environment only (``READINESS_WEBHOOK_TOKEN``) and sent as ``Authorization: Bearer``.

Payload (every kind)::

    {"source": "readiness", "env": "local",
     "kind": "task_failed" | "late_data" | "ingest_silence" | "held_back" | "stream_down" | "stream_behind",
     "summary": "...", "sent_at": "2026-09-21T01:02:03+00:00", ...kind-specific fields}

- ``task_failed`` (the DAGs' ``on_failure_callback``, after the last retry): ``dag_id``,
  ``task_id``, ``run_id``, ``map_index``, ``try_number``, ``period`` (or null), ``error``,
  ``log_url``.
- ``late_data`` (period close): ``period``, ``due_date``, ``units_missing``,
  ``missing_units`` (``{province: [unit, ...]}``), ``dag_id``, ``run_id``.
- ``ingest_silence`` (ingest): ``last_event_at``, ``hours_silent``, ``threshold_hours``.
- ``held_back`` (validation): ``period``, ``provinces`` (one entry per province over its quarantine
  share: ``province_code``, ``events``, ``quarantined``, ``share``, ``max_share``,
  ``events_held_back``), ``events_held_back``, ``dag_id``, ``run_id``.
- ``stream_down`` / ``stream_behind`` (the streaming service's watchdog,
  :func:`readiness.orchestration.stream_health.check_stream`): ``pid``, ``state``, ``heartbeat_at``,
  ``lag`` (``"topic:partition" -> offsets``), ``last_batch``.

Posting never raises: an alert that cannot be delivered is logged, the pipeline carries on.
This module is imported when the dag-processor parses the DAG files: standard library only.
"""
from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from readiness.settings import Settings, load_settings

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000


def build_alert(kind: str, summary: str, settings: Settings | None = None, now: datetime | None = None,
                **fields: Any) -> dict[str, Any]:
    return {
        "source": "readiness",
        "env": (settings or load_settings()).env,
        "kind": kind,
        "summary": summary,
        "sent_at": (now or datetime.now(timezone.utc)).isoformat(),
        **fields,
    }


def post_alert(payload: Mapping[str, Any], settings: Settings | None = None, *, url: str | None = None,
               token: str | None = None, timeout: float = 10.0, attempts: int = 3) -> bool:
    """POST ``payload`` as JSON to the webhook; True if it answered 2xx. Never raises."""
    url = url if url is not None else (settings or load_settings()).webhook_url
    body = json.dumps(payload, default=str, ensure_ascii=False).encode("utf-8")
    if not url:
        log.warning("alert (no webhook configured): %s", body.decode("utf-8"))
        return False
    headers = {"Content-Type": "application/json", "User-Agent": "readiness-alerts"}
    if token is None:  # the secret as the environment holds it now (a rotated token applies at once)
        secret = settings.webhook_token if settings is not None and settings.webhook_token else None
        token = (secret or load_settings().webhook_token).reveal()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for attempt in range(1, attempts + 1):
        try:
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if 200 <= response.status < 300:
                    return True
                problem = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
            if 400 <= exc.code < 500 and exc.code != 429:  # the receiver refuses it: retrying will not help
                break
        except (urllib.error.URLError, OSError) as exc:
            problem = repr(exc)
        if attempt < attempts:
            time.sleep(min(2.0 * attempt, 5.0))
    log.error("alert not delivered to the webhook (%s): %s", problem, body.decode("utf-8"))
    return False


# --------------------------------------------------------------------------------------------
# Failed tasks


def _period_of(context: Mapping[str, Any]) -> str | None:
    """The period a task worked on: the run's ``period_id`` param, else the task's own argument."""
    params = context.get("params") or {}
    if params.get("period_id"):
        return str(params["period_id"])
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    if conf.get("period_id"):
        return str(conf["period_id"])
    task = context.get("task")
    op_kwargs = getattr(task, "op_kwargs", None) or {}
    if op_kwargs.get("period_id"):
        return str(op_kwargs["period_id"])
    return None


def failure_alert(context: Mapping[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """The ``task_failed`` payload for an Airflow task context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    error = context.get("exception")
    error_text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else (str(error) if error else None)
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None)
    task_id = getattr(ti, "task_id", None)
    run_id = context.get("run_id") or getattr(dag_run, "run_id", None)
    period = _period_of(context)
    log_url = None
    try:
        log_url = getattr(ti, "log_url", None)
    except Exception:  # the URL needs configuration the callback may not have
        pass
    return build_alert(
        "task_failed",
        f"{dag_id}.{task_id} failed" + (f" for period {period}" if period else "") + f" (run {run_id})",
        settings,
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        map_index=getattr(ti, "map_index", -1),
        try_number=getattr(ti, "try_number", None),
        period=period,
        error=(error_text or "")[:MAX_ERROR_CHARS] or None,
        log_url=log_url,
    )


def task_failure_callback(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of every task: runs once the task has failed for good (no retry left)."""
    try:
        settings = load_settings()
        post_alert(failure_alert(context, settings), settings)
    except Exception:  # a callback must not hide the task's own failure
        log.exception("could not send the task failure alert")


# --------------------------------------------------------------------------------------------
# Late data


def late_data_alert(period_id: str, due_date: str, missing: Mapping[str, list[str]], dag_id: str | None = None,
                    run_id: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    count = sum(len(units) for units in missing.values())
    return build_alert(
        "late_data",
        f"{count} reporting units in {len(missing)} provinces have not reported {period_id} (due {due_date})",
        settings,
        period=period_id,
        due_date=due_date,
        units_missing=count,
        provinces_missing=len(missing),
        missing_units=dict(missing),
        dag_id=dag_id,
        run_id=run_id,
    )


def alert_missing_units(settings: Settings, closed: list[Mapping[str, Any]], dag_id: str | None = None,
                        run_id: str | None = None) -> dict[str, Any]:
    """One ``late_data`` alert per closed period that still has missing units; returns what was sent."""
    sent = {}
    for result in closed or []:
        if not result:
            continue
        missing = result.get("missing_units") or {}
        if missing:
            payload = late_data_alert(result["period_id"], result.get("due_date", ""), missing, dag_id, run_id, settings)
            sent[result["period_id"]] = {"units_missing": payload["units_missing"],
                                         "delivered": post_alert(payload, settings)}
    return sent


# --------------------------------------------------------------------------------------------
# Ingest silence (an SLA-like check)


def silence_hours() -> float:
    """Hours without any new event after which ingest alerts (``READINESS_INGEST_SILENCE_HOURS``, 0 = off)."""
    return load_settings().ingest_silence_hours


def hours_silent(last_event_at: datetime | None, now: datetime) -> float | None:
    if last_event_at is None:
        return None
    return (now - last_event_at).total_seconds() / 3600


def silence_exceeded(last_event_at: datetime | None, now: datetime, threshold_hours: float) -> bool:
    """True when the newest event is older than the threshold (never when off or nothing ever arrived)."""
    silent = hours_silent(last_event_at, now)
    return threshold_hours > 0 and silent is not None and silent > threshold_hours


def _state_file(settings: Settings) -> Path:
    return Path(settings.var_dir) / "ops" / "alerts_state.json"


def check_silence(settings: Settings, last_event_at: str | datetime | None, now: datetime | None = None,
                  threshold_hours: float | None = None, dag_id: str | None = None,
                  run_id: str | None = None) -> dict[str, Any]:
    """Alert once per silence: when no event arrived for ``threshold_hours``.

    The last alerted ``last_event_at`` is kept in ``<var_dir>/ops/alerts_state.json`` so a
    5-minute schedule does not repeat the same alert; a new event ends the silence.
    """
    now = now or datetime.now(timezone.utc)
    threshold = silence_hours() if threshold_hours is None else threshold_hours
    moment = datetime.fromisoformat(last_event_at) if isinstance(last_event_at, str) else last_event_at
    silent = hours_silent(moment, now)
    result = {"last_event_at": moment.isoformat() if moment else None,
              "hours_silent": None if silent is None else round(silent, 2),
              "threshold_hours": threshold, "silent": False, "alerted": False}
    if not silence_exceeded(moment, now, threshold):
        return result
    result["silent"] = True
    state_path = _state_file(settings)
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if state.get("ingest_silence") == result["last_event_at"]:
        return result  # already alerted for this silence
    payload = build_alert("ingest_silence",
                          f"no report event has arrived for {silent:.1f} h (threshold {threshold:g} h)",
                          settings, now, last_event_at=result["last_event_at"], hours_silent=result["hours_silent"],
                          threshold_hours=threshold, dag_id=dag_id, run_id=run_id)
    result["alerted"] = post_alert(payload, settings)
    if result["alerted"]:
        state["ingest_silence"] = result["last_event_at"]
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps(state))
    return result


# --------------------------------------------------------------------------------------------
# Provinces held back by the quality gate


def held_back_alert(period_id: str, provinces: list[Mapping[str, Any]], dag_id: str | None = None,
                    run_id: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """The ``held_back`` payload: ``provinces`` as validation summarises them (``held_back_provinces``)."""
    parts = [f"province {p['province_code']} ({p['quarantined']} of {p['events']} reports quarantined, "
             f"{p['share']:.0%} > {p['max_share']:.0%})" for p in provinces]
    held = sum(int(p["events_held_back"]) for p in provinces)
    return build_alert(
        "held_back",
        f"{period_id}: {len(provinces)} province(s) held back by the quality gate, {held} accepted report(s) "
        f"not published: " + "; ".join(parts),
        settings,
        period=period_id,
        provinces=[dict(p) for p in provinces],
        events_held_back=held,
        dag_id=dag_id,
        run_id=run_id,
    )


def alert_held_back(settings: Settings, result: Mapping[str, Any], dag_id: str | None = None,
                    run_id: str | None = None) -> dict[str, Any] | None:
    """One ``held_back`` alert for a validation result that held provinces back; what was sent, or None."""
    provinces = list(result.get("held_back_provinces") or [])
    if not provinces:
        return None
    payload = held_back_alert(str(result["period_id"]), provinces, dag_id, run_id, settings)
    return {"provinces": [p["province_code"] for p in provinces], "delivered": post_alert(payload, settings)}
