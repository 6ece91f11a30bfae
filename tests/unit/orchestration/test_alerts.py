"""readiness.orchestration.alerts against a local HTTP server that records what it receives.

``RecordingWebhook`` is also used by the engine tests (``test_orchestration_engine.py``).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from readiness.orchestration import alerts
from readiness.settings import load_settings
from support.webhook import RecordingWebhook


@pytest.fixture()
def webhook():
    with RecordingWebhook() as hook:
        yield hook


@pytest.fixture()
def settings(tmp_path, webhook):
    return load_settings(var_dir=tmp_path / "var", webhook_url=webhook.url)


NOW = datetime(2026, 9, 21, 2, 0, tzinfo=timezone.utc)


def test_post_alert_sends_json_with_bearer_token_from_the_environment(settings, webhook, monkeypatch):
    monkeypatch.setenv("READINESS_WEBHOOK_TOKEN", "t0ken")
    payload = alerts.build_alert("late_data", "3 units missing", settings, NOW, period="2026Q3")
    assert alerts.post_alert(payload, settings) is True
    [(headers, body)] = webhook.received
    assert headers["authorization"] == "Bearer t0ken"
    assert headers["content-type"] == "application/json"
    assert body == {"source": "readiness", "env": settings.env, "kind": "late_data", "summary": "3 units missing",
                    "sent_at": "2026-09-21T02:00:00+00:00", "period": "2026Q3"}


def test_no_token_no_authorization_header(settings, webhook, monkeypatch):
    monkeypatch.delenv("READINESS_WEBHOOK_TOKEN", raising=False)
    assert alerts.post_alert({"kind": "x"}, settings)
    assert "authorization" not in webhook.received[0][0]


def test_without_a_webhook_url_the_alert_is_only_logged(tmp_path, caplog):
    settings = load_settings(var_dir=tmp_path, webhook_url="")
    assert alerts.post_alert({"kind": "x", "summary": "hello"}, settings) is False
    assert "hello" in caplog.text


def test_an_unreachable_or_refusing_webhook_does_not_raise(tmp_path):
    with RecordingWebhook(status=403) as refusing:
        settings = load_settings(var_dir=tmp_path, webhook_url=refusing.url)
        assert alerts.post_alert({"kind": "x"}, settings, attempts=3) is False
        assert len(refusing.received) == 1  # a 4xx is not retried
    dead = load_settings(var_dir=tmp_path, webhook_url="http://127.0.0.1:9/none")
    assert alerts.post_alert({"kind": "x"}, dead, attempts=1, timeout=2) is False


def _context(exception: BaseException, **params: Any) -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="readiness_reprocess", task_id="rebuild_period", map_index=-1, try_number=3,
                         log_url="http://localhost:8080/dags/readiness_reprocess/runs/r1/tasks/rebuild_period")
    dag_run = SimpleNamespace(dag_id="readiness_reprocess", run_id="manual__2026-09-21T02:00:00+00:00", conf={})
    return {"ti": ti, "dag_run": dag_run, "run_id": dag_run.run_id, "params": params, "exception": exception,
            "task": SimpleNamespace(op_kwargs={})}


def test_failure_callback_posts_dag_task_run_period_and_error(settings, webhook, monkeypatch):
    monkeypatch.setenv("READINESS_WEBHOOK_URL", webhook.url)  # the callback loads the settings itself
    alerts.task_failure_callback(_context(ValueError("unknown methodology 'x'"), period_id="2026Q3"))
    [body] = webhook.bodies("task_failed")
    assert {k: body[k] for k in ("dag_id", "task_id", "run_id", "period", "error", "try_number")} == {
        "dag_id": "readiness_reprocess", "task_id": "rebuild_period", "run_id": "manual__2026-09-21T02:00:00+00:00",
        "period": "2026Q3", "error": "ValueError: unknown methodology 'x'", "try_number": 3}
    assert body["summary"] == ("readiness_reprocess.rebuild_period failed for period 2026Q3 "
                               "(run manual__2026-09-21T02:00:00+00:00)")


def test_failure_alert_takes_the_period_of_a_mapped_task():
    context = _context(RuntimeError("boom"))
    context["task"] = SimpleNamespace(op_kwargs={"period_id": "2026S1"})
    assert alerts.failure_alert(context)["period"] == "2026S1"
    context["task"] = SimpleNamespace(op_kwargs={})
    assert alerts.failure_alert(context)["period"] is None


def test_failure_callback_never_raises(monkeypatch, caplog):
    monkeypatch.setenv("READINESS_WEBHOOK_URL", "http://127.0.0.1:9/none")
    waits: list[float] = []
    monkeypatch.setattr(alerts.time, "sleep", waits.append)  # no waiting between the attempts, but counted
    tried: list[str] = []
    real_urlopen = alerts.urllib.request.urlopen

    def counting_urlopen(request, *args, **kwargs):
        tried.append(request.full_url)
        return real_urlopen(request, *args, **kwargs)

    monkeypatch.setattr(alerts.urllib.request, "urlopen", counting_urlopen)
    caplog.set_level("WARNING", logger=alerts.__name__)
    # Nothing usable in the context and nobody listening: logged, not raised.
    assert alerts.task_failure_callback({}) is None
    assert tried == ["http://127.0.0.1:9/none"] * 3  # the default three attempts: connection refused is retried
    assert waits == [2.0, 4.0]  # backing off between them
    [record] = [r for r in caplog.records if r.name == alerts.__name__]
    assert record.levelname == "ERROR"
    assert record.getMessage().startswith("alert not delivered to the webhook (URLError(ConnectionRefusedError(")
    # The undelivered alert is logged whole: task_failed, with what the empty context lacks as null.
    body = json.loads(record.getMessage().split("): ", 1)[1])
    assert (body["kind"], body["summary"], body["dag_id"], body["period"], body["error"]) == (
        "task_failed", "None.None failed (run None)", None, None, None)


def test_late_data_alert_lists_missing_units_per_province(settings, webhook):
    closed = [
        {"period_id": "2026Q3", "due_date": "2026-09-20", "missing_units": {"25": ["25.S03", "25.X01"], "38": ["38.S09"]}},
        {"period_id": "2026", "due_date": "2026-12-20", "missing_units": {}},
    ]
    sent = alerts.alert_missing_units(settings, closed, "readiness_period_close", "scheduled__1")
    assert sent == {"2026Q3": {"units_missing": 3, "delivered": True}}
    [body] = webhook.bodies("late_data")
    assert body["summary"] == "3 reporting units in 2 provinces have not reported 2026Q3 (due 2026-09-20)"
    assert body["missing_units"] == {"25": ["25.S03", "25.X01"], "38": ["38.S09"]}
    assert (body["period"], body["due_date"], body["units_missing"], body["provinces_missing"]) == ("2026Q3", "2026-09-20", 3, 2)


@pytest.mark.parametrize("last, threshold, expected", [
    (datetime(2026, 9, 20, 2, 0, tzinfo=timezone.utc), 24, False),   # exactly 24 h: not more than the threshold
    (datetime(2026, 9, 20, 1, 59, tzinfo=timezone.utc), 24, True),   # 24 h 01 min
    (datetime(2026, 9, 20, 1, 0, tzinfo=timezone.utc), 0, False),    # threshold 0: the check is off
    (None, 24, False),                                               # nothing ever arrived: nothing to compare
])
def test_silence_exceeded(last, threshold, expected):
    assert alerts.silence_exceeded(last, NOW, threshold) is expected


def test_silence_threshold_from_the_environment(monkeypatch):
    monkeypatch.delenv("READINESS_INGEST_SILENCE_HOURS", raising=False)
    assert alerts.silence_hours() == 24.0
    monkeypatch.setenv("READINESS_INGEST_SILENCE_HOURS", "6")
    assert alerts.silence_hours() == 6.0


def test_silence_alerts_once_per_silence(settings, webhook):
    last = "2026-09-19T02:00:00+00:00"
    first = alerts.check_silence(settings, last, now=NOW, threshold_hours=24)
    assert first == {"last_event_at": last, "hours_silent": 48.0, "threshold_hours": 24, "silent": True, "alerted": True}
    again = alerts.check_silence(settings, last, now=NOW, threshold_hours=24)
    assert (again["silent"], again["alerted"]) == (True, False)  # the same silence: no second alert
    [body] = webhook.bodies("ingest_silence")
    assert body["summary"] == "no report event has arrived for 48.0 h (threshold 24 h)"
    # A new event ends that silence; a later silence alerts again.
    later = alerts.check_silence(settings, "2026-09-19T12:00:00+00:00", now=NOW, threshold_hours=12)
    assert later["alerted"] is True
    assert len(webhook.bodies("ingest_silence")) == 2
    fresh = alerts.check_silence(settings, "2026-09-21T01:00:00+00:00", now=NOW, threshold_hours=12)
    assert (fresh["silent"], fresh["alerted"], fresh["hours_silent"]) == (False, False, 1.0)
